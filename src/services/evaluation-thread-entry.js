// Evaluation-thread entry: registers tsx in this thread, then loads the TypeScript side.
// (Loader hooks given to a worker through --import do not reach its entry module on Node 20.)
import { register } from 'tsx/esm/api';

register();
await import('./evaluation-thread.ts');
