/** Quoting for the command lines the exports print (POSIX sh, bash, zsh). */

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;
/** Characters still special inside double quotes (`!` only to interactive bash, but it would bite there). */
const DOUBLE_QUOTE_SPECIAL = /[$`"\\!]/;

/** One shell word that the shell hands to the program unchanged: bare when safe, else quoted. */
export function shellQuote(word: string): string {
  if (word.length > 0 && SAFE.test(word)) return word;
  // Inside single quotes nothing is special (no globbing, $ or history expansion).
  if (!word.includes("'")) return `'${word}'`;
  // trtexec's 'name':type quoting puts single quotes in the word; double quotes keep it readable.
  if (!DOUBLE_QUOTE_SPECIAL.test(word)) return `"${word}"`;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
