/** The CLI's documented exit codes (README: "CLI"). */
export const EXIT = {
  ok: 0,
  /** The gateway refused the request (an API error), or apply/replay could not finish. */
  refused: 1,
  /** Bad usage or bad input: unknown option, unreadable or invalid file, missing variable. */
  usage: 2,
  /** The gateway could not be reached (connection refused, DNS, timeout). */
  unreachable: 3,
  /** `sluice verify`: a signature does not match. */
  invalidSignature: 4,
} as const;

/** A failure with the exit code it maps to; the message is printed as `sluice: <message>`. */
export class CliError extends Error {
  constructor(readonly exitCode: number, message: string) {
    super(message);
    this.name = 'CliError';
  }
}
