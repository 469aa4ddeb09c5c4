/**
 * Channel pairing shared by every gateway on one NATS bus (issue 18; docs/channels.md, Pairing;
 * docs/bus.md, "Pairing and rate windows across gateways"): the codes waiting and the peers
 * approved are one value (the pairing file's JSON, {@link PairingData}) under the key
 * {@link PAIRING_KEY} of the KV bucket {@link PAIRING_BUCKET}, changed by compare-and-set
 * (kv-cell.ts). A code sent by gateway A can be approved through gateway B's RPC or CLI, and the
 * peer's next message is answered whichever gateway receives it: every lookup of a peer not on
 * the static allowlist reads the key.
 *
 * With NATS unreachable (fail safe):
 * - a stranger stays a stranger: no code can be recorded, so none is sent (the channel's
 *   `refusal`, if any, is sent instead) and the message is dropped;
 * - a peer this process saw approved (its last successful read) is still let in; a peer it never
 *   saw approved is not. A revocation made meanwhile applies once NATS is back;
 * - `pairing.list|approve|deny` fail with an error naming NATS (nothing is changed).
 *
 * At its first start on a bus the bucket is seeded from this gateway's `<state>/pairing.json`
 * when the key does not exist yet (created only if absent: a later gateway imports nothing).
 */
// The pairing rules' own module (a leaf: no service, no plugins).
import { emptyPairing, pairingRules, parsePairing, type PairingBook, type PairingData, type PairingPeer } from "./pairing.js";
import type { PairingApproval, PairingAsk, PairingRequest } from "./pairing.js";
// Loaded only through `openSharedChannelState` (a dynamic import): this pulls in the NATS client.
import { KvCells, type KvCellsBus } from "../bus/nats/index.js";

/** KV bucket of the shared pairing state. */
export const PAIRING_BUCKET = "exoclaw_pairing";
/** The key holding the whole {@link PairingData} (at most 200 codes plus the approved peers). */
export const PAIRING_KEY = "state";

/**
 * The shared pairing store cannot be reached (NATS down). Over RPC: -32603 with this message and
 * `data.reason` `pairing_unavailable` (its `publicFailure`).
 */
export class PairingUnavailableError extends Error {
  readonly publicFailure: { reason: "pairing_unavailable"; message: string };
  constructor(cause: unknown) {
    super(`the pairing store (NATS KV ${PAIRING_BUCKET}) cannot be reached: ${cause instanceof Error ? cause.message : String(cause)}; try again later`);
    this.name = "PairingUnavailableError";
    this.publicFailure = { reason: "pairing_unavailable", message: this.message };
  }
}

/** Options of {@link KvPairingStore}. */
export interface KvPairingStoreOptions {
  bus: KvCellsBus;
  /** What the bucket starts from when the key does not exist yet (the state dir's file). */
  seed?: () => PairingData;
  /** Told once per outage when NATS cannot be read (then the last copy read answers). */
  onWarning?: (message: string, error?: unknown) => void;
}

/** See the module comment. */
export class KvPairingStore implements PairingBook {
  private readonly cells: KvCells;
  /** The last value read or written (answers `isApproved` while NATS is unreachable). */
  private last: PairingData = emptyPairing();
  private seeded = false;
  private warned = false;

  constructor(private readonly options: KvPairingStoreOptions) {
    this.cells = new KvCells({ bus: options.bus, bucket: PAIRING_BUCKET, maxAgeMs: 0 });
  }

  /** Creates the key from the seed when absent (once per process; a failure is retried next time). */
  private async seed(): Promise<void> {
    if (this.seeded) return;
    const seed = this.options.seed?.();
    if (seed !== undefined && (seed.pending.length > 0 || seed.approved.length > 0)) {
      await this.cells.update(PAIRING_KEY, (v) => (v === undefined ? { write: JSON.stringify(seed), result: undefined } : { result: undefined }));
    }
    this.seeded = true;
  }

  private async read(): Promise<PairingData> {
    await this.seed();
    const bytes = await this.cells.get(PAIRING_KEY);
    this.last = bytes === undefined ? emptyPairing() : parsePairing(Buffer.from(bytes).toString("utf8"));
    this.warned = false;
    return this.last;
  }

  private async apply<T>(rule: (data: PairingData) => { result: T; changed: boolean }): Promise<T> {
    try {
      await this.seed();
      return await this.cells.update(PAIRING_KEY, (bytes) => {
        const data = bytes === undefined ? emptyPairing() : parsePairing(Buffer.from(bytes).toString("utf8"));
        const { result, changed } = rule(data);
        this.last = data;
        return changed ? { write: JSON.stringify(data), result } : { result };
      });
    } catch (err) {
      if (err instanceof Error && err.name === "PairingError") throw err;
      throw new PairingUnavailableError(err);
    }
  }

  /** Whether the operator approved this peer; with NATS unreachable, as this process last read it. Never throws. */
  async isApproved(who: PairingPeer): Promise<boolean> {
    try {
      return pairingRules.isApproved(await this.read(), who);
    } catch (err) {
      if (!this.warned) this.options.onWarning?.("pairing: NATS unreachable; approved peers as last read are let in, strangers get no code", err);
      this.warned = true;
      return pairingRules.isApproved(this.last, who);
    }
  }

  /** See {@link PairingBook.request}. @throws PairingUnavailableError while NATS is unreachable */
  request(who: PairingPeer, now = Date.now()): Promise<PairingAsk> {
    return this.apply((d) => pairingRules.request(d, who, now));
  }

  /** See {@link PairingBook.list}. @throws PairingUnavailableError while NATS is unreachable */
  async list(now = Date.now()): Promise<{ pending: PairingRequest[]; approved: PairingApproval[] }> {
    try {
      return pairingRules.list(await this.read(), now);
    } catch (err) {
      throw new PairingUnavailableError(err);
    }
  }

  /** See {@link PairingBook.approve}. @throws PairingError; Error while NATS is unreachable */
  approve(codeText: string, now = Date.now()): Promise<PairingApproval> {
    return this.apply((d) => pairingRules.approve(d, codeText, now));
  }

  /** See {@link PairingBook.deny}. @throws PairingError; Error while NATS is unreachable */
  deny(codeText: string, now = Date.now()): Promise<{ code: string; revoked: boolean }> {
    return this.apply((d) => pairingRules.deny(d, codeText, now));
  }
}
