/**
 * Seeded generator of the text lines PP-OCR reads on receipts, labels and signs: English words,
 * numbers, dates, prices, codes, times and phone numbers, 5 to 25 characters long. Codes avoid the
 * letters O, I and l, which no reader (person or model) tells from 0 and 1 without context.
 */
import type { PRNG } from 'seedrandom';

export const MIN_LENGTH = 5;
export const MAX_LENGTH = 25;

const WORDS = (
  'account address amount apple april balance bank battery blue book box bridge build business cable call camera ' +
  'card center change charge check city class clean clock coffee color company contact copy count credit customer ' +
  'daily data date deliver delivery design direct discount door download east energy entry express fast file final ' +
  'floor fresh garden gate green group guide health hello help home hotel house input invoice item kitchen label ' +
  'light limit line local lunch market member menu metal model money monday morning museum music network night ' +
  'north number office online open order orange paper park parking password payment people phone photo place plan ' +
  'point power price print product public quality quick radio receipt record report river road room sale school ' +
  'service ship shop silver size smart south space speed square station status stock store street studio summer ' +
  'system table taxi team text ticket time today total tower track train travel value video water weekly west ' +
  'window winter world yellow zone'
).split(' ');

const MONTHS = 'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split(' ');
const CODE_LETTERS = 'ABCDEFGHJKLMNPQRSTUVWXYZ';
const LABELS = ['Total', 'Price', 'Amount', 'Subtotal', 'Tax', 'Paid', 'Due', 'Balance'];
const CODE_PREFIXES = ['INV', 'SKU', 'REF', 'NO', 'ID', 'PO', 'LOT', 'TEL'];

export class TextLineGenerator {
  constructor(private readonly rng: PRNG) {}

  private int(lo: number, hi: number): number {
    return lo + Math.floor(this.rng() * (hi - lo + 1));
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.rng() * items.length)];
  }

  private digits(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += String(this.int(0, 9));
    return s;
  }

  private letters(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += this.pick([...CODE_LETTERS]);
    return s;
  }

  private cased(words: string[]): string {
    const style = this.rng();
    if (style < 0.45) return words.join(' ');
    if (style < 0.85) return words.map((w) => w[0].toUpperCase() + w.slice(1)).join(' ');
    return words.join(' ').toUpperCase();
  }

  private grouped(n: number): string {
    return n.toLocaleString('en-US');
  }

  words(): string {
    return this.cased(Array.from({ length: this.int(1, 4) }, () => this.pick(WORDS)));
  }

  number(): string {
    const kind = this.int(0, 2);
    if (kind === 0) return this.grouped(this.int(10000, 9999999));
    if (kind === 1) return `${this.int(0, 999)}.${this.digits(this.int(2, 4))}`;
    return this.rng() < 0.5 ? `${this.int(1, 99)}.${this.digits(1)}%` : `Save ${this.int(5, 70)}%`;
  }

  date(): string {
    const y = this.int(1998, 2031);
    const m = this.int(1, 12);
    const d = this.int(1, 28);
    const p = (v: number) => String(v).padStart(2, '0');
    switch (this.int(0, 4)) {
      case 0: return `${y}-${p(m)}-${p(d)}`;
      case 1: return `${p(d)}/${p(m)}/${y}`;
      case 2: return `${MONTHS[m - 1]} ${d}, ${y}`;
      case 3: return `${p(d)}.${p(m)}.${y}`;
      default: return `Date: ${y}/${p(m)}/${p(d)}`;
    }
  }

  price(): string {
    const cents = this.digits(2);
    const whole = this.rng() < 0.6 ? this.int(1, 999) : this.int(1000, 99999);
    const amount = `${this.grouped(whole)}.${cents}`;
    switch (this.int(0, 3)) {
      case 0: return `$${amount}`;
      case 1: return `${this.pick(LABELS)}: $${amount}`;
      case 2: return `USD ${amount}`;
      default: return `${this.pick(LABELS).toUpperCase()} ${amount}`;
    }
  }

  code(): string {
    switch (this.int(0, 3)) {
      case 0: return `${this.pick(CODE_PREFIXES)}-${this.digits(this.int(4, 7))}`;
      case 1: return `${this.letters(2)}${this.digits(2)}-${this.letters(this.int(2, 3))}${this.digits(this.int(1, 3))}`;
      case 2: return `#${this.letters(1)}${this.digits(this.int(3, 6))}`;
      default: return `${this.pick(CODE_PREFIXES)} ${this.digits(3)}-${this.letters(1)}${this.digits(2)}`;
    }
  }

  time(): string {
    const p = (v: number) => String(v).padStart(2, '0');
    if (this.rng() < 0.5) return `${p(this.int(0, 23))}:${p(this.int(0, 59))}:${p(this.int(0, 59))}`;
    return `Open ${this.int(6, 10)}:${p(this.int(0, 3) * 15)}-${this.int(17, 22)}:${p(this.int(0, 3) * 15)}`;
  }

  phone(): string {
    if (this.rng() < 0.5) return `+1 ${this.digits(3)}-${this.digits(3)}-${this.digits(4)}`;
    return `Tel (${this.digits(3)}) ${this.digits(3)}-${this.digits(4)}`;
  }

  mixed(): string {
    const word = this.cased([this.pick(WORDS)]);
    switch (this.int(0, 3)) {
      case 0: return `${word} ${this.date()}`;
      case 1: return `${word} ${this.code()}`;
      case 2: return `${this.cased([this.pick(WORDS), this.pick(WORDS)])} ${this.int(2, 999)}`;
      default: return `${this.int(1, 48)} x ${word} $${this.int(1, 99)}.${this.digits(2)}`;
    }
  }

  /** One line of MIN_LENGTH..MAX_LENGTH characters. */
  next(): string {
    const kinds: [number, () => string][] = [
      [0.24, () => this.words()],
      [0.08, () => this.number()],
      [0.1, () => this.date()],
      [0.12, () => this.price()],
      [0.1, () => this.code()],
      [0.06, () => this.time()],
      [0.06, () => this.phone()],
      [0.24, () => this.mixed()],
    ];
    for (;;) {
      let r = this.rng();
      let make = kinds[kinds.length - 1][1];
      for (const [p, f] of kinds) {
        if (r < p) {
          make = f;
          break;
        }
        r -= p;
      }
      const line = make();
      const n = [...line].length;
      if (n >= MIN_LENGTH && n <= MAX_LENGTH) return line;
    }
  }
}
