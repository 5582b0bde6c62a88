/**
 * Progress for long work (calibration, analysis, search) on stderr, so stdout stays clean for --json.
 * On a terminal: one line redrawn in place (a bar when the total is known, a spinner when not) with done/total,
 * rate, ETA and a free-text status. Elsewhere (CI logs, pipes, files): a plain line now and then, never control
 * characters. With quiet: nothing at all.
 *
 * Written here rather than taken from cli-progress/ora: what is needed is ~150 lines, and owning it keeps the
 * non-terminal path and the ETA math testable with an injected stream and clock.
 */

/** The part of a stream the reporter uses; process.stderr fits, and so does a test double. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(chunk: string): boolean;
}

export interface ProgressOptions {
  label: string;
  /** Units of work expected (episodes, batches, layers); leave out when unknown. */
  total?: number;
  /** A wall-clock limit that ends the work early (e.g. --time-limit); the ETA never exceeds what is left of it. */
  timeLimitMs?: number;
  /** Default: process.stderr. */
  stream?: ProgressStream;
  quiet?: boolean;
  /** Milliseconds clock; injectable for tests. Default: performance.now. */
  now?: () => number;
  /** Plain-line interval when the stream is not a terminal (default 10 s). */
  logIntervalMs?: number;
  /** Shortest time between two terminal redraws (default 80 ms). */
  redrawMs?: number;
}

/**
 * Milliseconds left for `total - done` units at the rate seen so far, capped by what is left of a time limit.
 * Undefined when nothing can be said yet (no unit done, or no total and no limit).
 */
export function estimateEtaMs(done: number, total: number | undefined, elapsedMs: number, timeLimitMs?: number): number | undefined {
  const byLimit = timeLimitMs !== undefined ? Math.max(0, timeLimitMs - elapsedMs) : undefined;
  let byRate: number | undefined;
  if (total !== undefined && done >= total) byRate = 0;
  else if (total !== undefined && done > 0 && elapsedMs > 0) byRate = ((total - done) * elapsedMs) / done;
  if (byRate === undefined) return byLimit;
  return byLimit === undefined ? byRate : Math.min(byRate, byLimit);
}

/** 0:07, 4:05, 1:02:03: the clock form people read at a glance. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** Units per second, or per minute when slower than one a second. */
export function formatRate(done: number, elapsedMs: number, unit = 'it'): string {
  if (done <= 0 || elapsedMs <= 0) return `-/s`;
  const perSecond = (done * 1000) / elapsedMs;
  if (perSecond >= 1) return `${perSecond >= 100 ? perSecond.toFixed(0) : perSecond.toPrecision(3)} ${unit}/s`;
  return `${(perSecond * 60).toPrecision(3)} ${unit}/min`;
}

/** What a progress listener sees on every update of every reporter. */
export interface ProgressSnapshot {
  label: string;
  done: number;
  total?: number;
  elapsedMs: number;
  etaMs?: number;
  finished: boolean;
}

const listeners = new Set<(p: ProgressSnapshot) => void>();

/**
 * Every reporter's updates, quiet or not, go to `listener` until the returned function is called: the live
 * /metrics of a run (--metrics-port) shows the same progress as the terminal, without each caller wiring it.
 */
export function observeProgress(listener: (p: ProgressSnapshot) => void): () => void {
  listeners.add(listener);
  return () => { listeners.delete(listener); };
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const BAR_WIDTH = 24;

export class Progress {
  readonly label: string;
  private total: number | undefined;
  private readonly timeLimitMs: number | undefined;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly quiet: boolean;
  private readonly now: () => number;
  private readonly logIntervalMs: number;
  private readonly redrawMs: number;
  private readonly startedAt: number;
  private done = 0;
  private statusText = '';
  private lastDraw = -Infinity;
  private lastLog: number;
  private frame = 0;
  private finished = false;

  constructor(options: ProgressOptions) {
    this.label = options.label;
    this.total = options.total;
    this.timeLimitMs = options.timeLimitMs;
    this.stream = options.stream ?? process.stderr;
    this.tty = Boolean(this.stream.isTTY);
    this.quiet = Boolean(options.quiet);
    this.now = options.now ?? (() => performance.now());
    this.logIntervalMs = options.logIntervalMs ?? 10_000;
    this.redrawMs = options.redrawMs ?? 80;
    this.startedAt = this.now();
    this.lastLog = this.startedAt;
  }

  /** Adds n finished units; `status` replaces the free-text part (e.g. "best 0.962 @ 1.84 ms"). */
  tick(n = 1, status?: string): void {
    this.update(this.done + n, status);
  }

  update(done: number, status?: string): void {
    if (this.finished) return;
    this.done = done;
    if (status !== undefined) this.statusText = status;
    this.notify();
    this.render(false);
  }

  status(text: string): void {
    this.update(this.done, text);
  }

  /** For work whose size becomes known late (e.g. after the first episode). */
  setTotal(total: number | undefined): void {
    this.total = total;
    this.notify();
    this.render(false);
  }

  /** Prints a message without breaking the bar: clears the line, writes the message, redraws. */
  log(message: string): void {
    if (this.quiet) return;
    if (this.tty && !this.finished) {
      this.stream.write(`\r\x1b[K${message}\n`);
      this.render(true);
    } else {
      this.stream.write(`${message}\n`);
    }
  }

  /** Ends the line with the final numbers (always printed unless quiet, terminal or not). */
  finish(status?: string): void {
    if (this.finished) return;
    if (status !== undefined) this.statusText = status;
    this.finished = true;
    this.notify();
    if (this.quiet) return;
    const line = this.line(true);
    this.stream.write(this.tty ? `\r\x1b[K${line}\n` : `${line}\n`);
  }

  elapsedMs(): number {
    return this.now() - this.startedAt;
  }

  etaMs(): number | undefined {
    return estimateEtaMs(this.done, this.total, this.elapsedMs(), this.timeLimitMs);
  }

  private notify(): void {
    if (listeners.size === 0) return;
    const snapshot: ProgressSnapshot = { label: this.label, done: this.done, total: this.total, elapsedMs: this.elapsedMs(), etaMs: this.etaMs(), finished: this.finished };
    for (const listener of listeners) listener(snapshot);
  }

  private render(force: boolean): void {
    if (this.quiet) return;
    const t = this.now();
    if (this.tty) {
      if (!force && t - this.lastDraw < this.redrawMs) return;
      this.lastDraw = t;
      this.frame++;
      this.stream.write(`\r\x1b[K${this.fit(this.line(false))}`);
    } else if (t - this.lastLog >= this.logIntervalMs) {
      this.lastLog = t;
      this.stream.write(`${this.line(false)}\n`);
    }
  }

  /** The terminal line must not wrap, or every redraw leaves a stale copy above it. */
  private fit(line: string): string {
    const columns = this.stream.columns ?? 80;
    const chars = [...line];
    return chars.length < columns ? line : `${chars.slice(0, Math.max(0, columns - 2)).join('')}…`;
  }

  /** label [bar] done/total pct | rate | ETA | status */
  line(final: boolean): string {
    const elapsed = this.elapsedMs();
    const parts: string[] = [];
    const total = this.total;
    let head = this.label;
    if (this.tty && !final) {
      if (total !== undefined && total > 0) {
        const fraction = Math.min(1, this.done / total);
        const filled = Math.round(fraction * BAR_WIDTH);
        head = `${this.label} ${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}`;
      } else {
        head = `${SPINNER[this.frame % SPINNER.length]} ${this.label}`;
      }
    }
    parts.push(total !== undefined ? `${this.done}/${total} (${total > 0 ? Math.floor((100 * Math.min(this.done, total)) / total) : 100}%)` : `${this.done}`);
    parts.push(formatRate(this.done, elapsed));
    if (final) parts.push(`took ${formatDuration(elapsed)}`);
    else {
      const eta = this.etaMs();
      parts.push(eta === undefined ? `elapsed ${formatDuration(elapsed)}` : `ETA ${formatDuration(eta)}`);
    }
    if (this.statusText) parts.push(this.statusText);
    return `${head}${this.tty && !final ? ' ' : ': '}${parts.join(' · ')}`;
  }
}

/** The usual way in: a reporter on process.stderr. */
export function progress(label: string, options: Omit<ProgressOptions, 'label'> = {}): Progress {
  return new Progress({ label, ...options });
}

/**
 * A search's progress in measurements run (full evaluations + screening runs on the subset), so that an agent that
 * screens many policies for each full evaluation still moves its bar. With an evaluation budget the total is that
 * budget projected through the screening runs seen per full evaluation so far (a DQN screening 5 policies per
 * confirmed one, with 20 evaluations to spend, expects about 120 runs); without one there is no total.
 */
export function searchProgress(o: { evaluations: number; screeningRuns: number; maxEvaluations?: number }): { done: number; total?: number } {
  const done = o.evaluations + o.screeningRuns;
  if (o.maxEvaluations === undefined) return { done };
  const perEvaluation = o.evaluations > 0 ? done / o.evaluations : 1 + o.screeningRuns;
  return { done, total: Math.max(done, Math.round(o.maxEvaluations * perEvaluation)) };
}

/** `12 evals + 40 screening runs`: what a search's progress counts, for its status text. */
export function workText(evaluations: number, screeningRuns: number): string {
  return screeningRuns > 0 ? `${evaluations} evals + ${screeningRuns} screening runs` : `${evaluations} evals`;
}
