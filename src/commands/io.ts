/** What a command may touch of the outside world, handed in by the entry point (tests pass fakes). */
export interface CommandIO {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly readStdin: () => Promise<string>;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Whether stderr is a terminal (progress lines are shown only there). */
  readonly stderrIsTTY?: boolean;
  /** The running Node.js version (process.versions.node), for the CLI's version check. */
  readonly nodeVersion: string;
}

/** A mistake in how the command was called: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
