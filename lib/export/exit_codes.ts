/**
 * The exit codes, moved to lib/exit_codes.ts (one table for every command); re-exported here for old
 * imports.
 *
 * @example
 * ```ts
 * import { EXIT } from "./exit_codes.ts";
 * console.log(EXIT.noCheckpoint); // 4
 * ```
 *
 * @module
 */

export {
  EXIT,
  exitCodeFor,
  exitCodesHelp,
  ExitError,
  type ExitName,
  reportError,
  runCommand,
} from "../exit_codes.ts";
