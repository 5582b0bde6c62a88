/**
 * Stable-Baselines3's linear schedule (get_linear_fn): from `start` to `end` over the first
 * `endFraction` of training, then flat. `progressRemaining` goes from 1 (start) to 0 (end).
 */
export function linearSchedule(start: number, end: number, endFraction: number): (progressRemaining: number) => number {
  return (progressRemaining) => {
    const done = 1 - progressRemaining;
    if (endFraction <= 0 || done > endFraction) return end;
    return start + (done * (end - start)) / endFraction;
  };
}
