/** The agents `--agent` can name; a module of its own so the command line lists them without loading TensorFlow.js. */
export const AGENT_NAMES = ['dqn', 'greedy', 'bisect', 'knapsack', 'random', 'exhaustive', 'rules', 'int8', 'fp16', 'best-calibration'] as const;
export type AgentName = (typeof AGENT_NAMES)[number];
