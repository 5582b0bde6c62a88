// Entry of a local evaluation worker thread. A worker thread does not inherit the module hooks that bin/trtmix.js
// registers in the main thread, so it registers tsx itself before loading the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./thread-worker.ts');
