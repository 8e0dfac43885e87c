/** A mistake in the command line: printed without a stack trace, exit status 2. */
export class UsageError extends Error {}
