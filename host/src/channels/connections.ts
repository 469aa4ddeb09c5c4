/**
 * Starts the persistent connections of the configured channels (`[channels.<name>] connect`):
 * one {@link Connection} per account, wired to the channel plugin's `connect` / `on_frame` and to
 * the service's admission (the same path as webhook and poll messages).
 */
import type { ChannelConfig } from "../config/index.js";
import type { PluginHost } from "../plugins/index.js";
import { Connection, connectionStatePath } from "./connection.js";
import type { Admission, ChannelLogger } from "./types.js";

export { Connection };

/** What {@link startConnections} needs; `C` is the service's channel record. */
export interface StartConnectionsOptions<C> {
  channels: { ch: C; config: ChannelConfig }[];
  plugins: { callConnection?: PluginHost["callConnection"] };
  stateDir: string;
  logger: ChannelLogger;
  /** Whether the channel's plugin is loaded and exports `connect` + `on_frame` now. */
  ready(ch: C): boolean;
  /** The channel's plugin now (a config reload may change it). */
  pluginOf(ch: C): string;
  admit(ch: C, account: string, messages: unknown[]): Promise<Admission[]>;
}

/**
 * Starts one connection loop per account of every channel with `connect`.
 * @returns the started loops (stop each on shutdown); none when the plugin host cannot run connection exports
 */
export function startConnections<C>(o: StartConnectionsOptions<C>): Connection[] {
  const call = o.plugins.callConnection;
  if (call === undefined) return [];
  const out: Connection[] = [];
  for (const { ch, config } of o.channels) {
    if (config.connect === undefined) continue;
    for (const account of config.connect.accounts) {
      const c = new Connection({
        channel: config.name,
        account,
        stateFile: connectionStatePath(o.stateDir, config.name, account),
        logger: o.logger,
        ready: () => o.ready(ch),
        // The plugin name is read at each call: a config reload may point the channel elsewhere.
        call: (fn, input, signal) => call(o.pluginOf(ch), fn, input, signal),
        admit: (messages) => o.admit(ch, account, messages),
      });
      c.start();
      out.push(c);
    }
  }
  return out;
}
