/** Things a bench started, stopped in reverse order, each once (also on errors and signals). */
export class Stack {
  private readonly stops: { name: string; stop: () => Promise<unknown> | unknown }[] = [];
  private closing?: Promise<void>;

  constructor(private readonly log: (m: string) => void) {}

  defer(name: string, stop: () => Promise<unknown> | unknown) {
    this.stops.push({ name, stop });
  }

  close(): Promise<void> {
    return (this.closing ??= (async () => {
      for (const { name, stop } of this.stops.reverse()) {
        try {
          await stop();
        } catch (err) {
          this.log(`stopping ${name} failed: ${(err as Error).message}`);
        }
      }
    })());
  }
}
