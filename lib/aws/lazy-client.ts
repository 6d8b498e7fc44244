/** What this code base calls on an AWS SDK client: `send(command, options?)` and `destroy()`. */
interface SdkClient {
  // biome-ignore lint/suspicious/noExplicitAny: each client's `send` is overloaded per command
  send(command: any, options?: any): Promise<unknown>;
  destroy(): void;
}

/**
 * An AWS SDK client whose module is loaded with `import()`, and the client created, on its first
 * `send`; every later send uses that one client (once per container). In a Lambda bundle the
 * client's code is then a chunk of its own, parsed only by an invocation that sends
 * (docs/performance.md, "Cold start"). Only `send` and `destroy` are served: nothing here reads
 * a client's `config` or `middlewareStack`.
 */
export function lazyClient<Client extends SdkClient>(create: () => Promise<Client>): Client {
  let client: Promise<Client> | undefined;
  const load = () => {
    client ??= create();
    return client;
  };
  const served: SdkClient = {
    send: async (command, options) => (await load()).send(command, options),
    destroy: () => {
      void client?.then((created) => created.destroy());
    },
  };
  return served as Client;
}
