/**
 * Pairing (`[channels.<name>] pairing = true`): a stranger's direct message gets a short code
 * instead of silence; the operator approves the code (`exoclaw pairing approve <code>`, RPC
 * `pairing.approve`) and the stranger's peer joins the channel's allowlist at once, without a
 * restart. Requests and approvals live in `<state dir>/pairing.json` (mode 0600, written
 * atomically), so approvals survive a restart. Every lookup of a peer not on the static
 * allowlist re-reads the file when its modification time or size changed, so gateways sharing a
 * state directory see each other's approvals at their next message (docs/channels.md, Pairing).
 */
import { randomInt } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** The pairing file under the state directory. */
export const PAIRING_FILE = "pairing.json";
/** How long a code waits for the operator, ms (one hour); an expired code's stranger gets a new one. */
export const PAIRING_CODE_TTL_MS = 60 * 60 * 1000;
/** Codes waiting at once; past it the oldest is dropped (a flood of strangers cannot grow the file). */
export const MAX_PENDING_CODES = 200;
/** A stranger who writes again is re-sent the same code at most this often, ms. */
export const PAIRING_REMIND_MS = 10 * 60 * 1000;
/** Letters and digits without look-alikes (no 0/O, 1/I/L). */
const ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/** Who a code or an approval is for. */
export interface PairingPeer {
  channel: string;
  account: string;
  peer: string;
  /** The stranger's platform user id, when the plugin reported one. */
  sender?: string;
  /** The stranger's display name as the platform reported it (for `pairing list`; untrusted). */
  senderName?: string;
}

/** A code waiting for the operator. */
export interface PairingRequest extends PairingPeer {
  /** `XXXX-XXXX` from {@link ALPHABET}. */
  code: string;
  /** ms since the Unix epoch. */
  createdAt: number;
  /** When the stranger was last sent the code, ms since the Unix epoch. */
  remindedAt: number;
  /** The operator denied it: the stranger gets no answer (and no new code) until it expires. */
  denied?: true;
}

/** A peer the operator let in. */
export interface PairingApproval extends PairingPeer {
  code: string;
  approvedAt: number;
}

/** What {@link PairingStore.request} decided for a stranger's message. */
export interface PairingAsk {
  code: string;
  /** Whether to send the code now (a new code, or the last reminder is old enough). */
  send: boolean;
}

/** A code not in the normalized `XXXX-XXXX` form, or not pending. */
export class PairingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PairingError";
  }
}

/** Upper-cases a code and adds the dash (`abcd efgh`, `ABCDEFGH` -> `ABCD-EFGH`). @throws PairingError when it is not 8 code characters */
export function normalizeCode(text: string): string {
  const raw = text.toUpperCase().replace(/[\s-]/g, "");
  if (raw.length !== 8 || [...raw].some((c) => !ALPHABET.includes(c))) {
    throw new PairingError(`"${text.slice(0, 32)}" is not a pairing code (8 letters and digits, like ABCD-EF23)`);
  }
  return `${raw.slice(0, 4)}-${raw.slice(4)}`;
}

function newCode(): string {
  let s = "";
  for (let i = 0; i < 8; i++) s += ALPHABET[randomInt(ALPHABET.length)];
  return `${s.slice(0, 4)}-${s.slice(4)}`;
}

const samePeer = (a: PairingPeer, b: PairingPeer): boolean => a.channel === b.channel && a.account === b.account && a.peer === b.peer;

/** The message a stranger gets with its code. */
export function pairingReply(code: string): string {
  return `This bot only talks to people its operator has approved. Your pairing code is ${code}: send it to the operator, who can let you in with "exoclaw pairing approve ${code}". The code is valid for one hour.`;
}

/** The pairing state: codes waiting and peers approved (the file's and the NATS KV value's JSON). */
export interface PairingData {
  version: 1;
  pending: PairingRequest[];
  approved: PairingApproval[];
}

/** An empty {@link PairingData}. */
export const emptyPairing = (): PairingData => ({ version: 1, pending: [], approved: [] });

/** Parses a stored {@link PairingData}; anything unreadable reads as empty (never throws). */
export function parsePairing(text: string): PairingData {
  try {
    const parsed = JSON.parse(text) as Partial<PairingData>;
    return {
      version: 1,
      pending: Array.isArray(parsed.pending) ? parsed.pending.filter(isEntry) : [],
      approved: Array.isArray(parsed.approved) ? parsed.approved.filter(isEntry) : [],
    };
  } catch {
    return emptyPairing();
  }
}

/** Drops expired codes from `data`. */
function expire(data: PairingData, now: number): void {
  data.pending = data.pending.filter((p) => now - p.createdAt < PAIRING_CODE_TTL_MS);
}

/**
 * The pure rules of pairing, applied to a {@link PairingData} in place: each returns its result
 * and whether `data` changed (the caller then stores it: the file, or NATS KV by compare-and-set).
 */
export const pairingRules = {
  isApproved(data: PairingData, who: PairingPeer): boolean {
    return data.approved.some((a) => samePeer(a, who));
  },
  /** See {@link PairingBook.request}. */
  request(data: PairingData, who: PairingPeer, now: number): { result: PairingAsk; changed: boolean } {
    expire(data, now);
    const existing = data.pending.find((p) => samePeer(p, who));
    if (existing !== undefined) {
      if (existing.denied === true || now - existing.remindedAt < PAIRING_REMIND_MS) return { result: { code: existing.code, send: false }, changed: false };
      existing.remindedAt = now;
      return { result: { code: existing.code, send: true }, changed: true };
    }
    let code = newCode();
    while (data.pending.some((p) => p.code === code)) code = newCode();
    data.pending.push({ ...who, code, createdAt: now, remindedAt: now });
    while (data.pending.length > MAX_PENDING_CODES) data.pending.shift();
    return { result: { code, send: true }, changed: true };
  },
  list(data: PairingData, now: number): { pending: PairingRequest[]; approved: PairingApproval[] } {
    expire(data, now);
    return { pending: data.pending.map((p) => ({ ...p })), approved: data.approved.map((a) => ({ ...a })) };
  },
  /** See {@link PairingBook.approve}. @throws PairingError */
  approve(data: PairingData, codeText: string, now: number): { result: PairingApproval; changed: boolean } {
    const code = normalizeCode(codeText);
    expire(data, now);
    const i = data.pending.findIndex((p) => p.code === code);
    if (i < 0) throw new PairingError(`no pending pairing code ${code} (codes expire after one hour; "exoclaw pairing list" shows the pending ones)`);
    const req = data.pending.splice(i, 1)[0]!;
    const { createdAt: _c, remindedAt: _r, denied: _d, ...who } = req;
    const approval: PairingApproval = { ...who, code, approvedAt: now };
    data.approved = data.approved.filter((a) => !samePeer(a, approval));
    data.approved.push(approval);
    return { result: approval, changed: true };
  },
  /** See {@link PairingBook.deny}. @throws PairingError */
  deny(data: PairingData, codeText: string, now: number): { result: { code: string; revoked: boolean }; changed: boolean } {
    const code = normalizeCode(codeText);
    expire(data, now);
    const i = data.pending.findIndex((p) => p.code === code);
    if (i >= 0) {
      // Kept as a silenced request until it expires: a stranger who writes again is not sent a new code.
      data.pending[i]!.denied = true;
      data.pending[i]!.createdAt = now;
      return { result: { code, revoked: false }, changed: true };
    }
    const j = data.approved.findIndex((a) => a.code === code);
    if (j < 0) throw new PairingError(`no pending or approved pairing code ${code}`);
    data.approved.splice(j, 1);
    return { result: { code, revoked: true }, changed: true };
  },
};

/**
 * Where pairing requests and approvals live: {@link PairingStore} (the state directory's file)
 * or, with `[bus]`, the NATS KV store shared by every gateway (channels/pairing-kv.ts). Methods
 * may be synchronous (the file) or asynchronous (NATS); callers await them.
 */
export interface PairingBook {
  /** Whether the operator approved this peer. */
  isApproved(who: PairingPeer): boolean | Promise<boolean>;
  /**
   * The code of a stranger's request: its pending one, or a new one (stored). `send` says
   * whether to send it now: always for a new code, else at most every {@link PAIRING_REMIND_MS}.
   * @throws Error when it cannot be stored
   */
  request(who: PairingPeer, now?: number): PairingAsk | Promise<PairingAsk>;
  /** Codes waiting and peers approved (expired codes left out). */
  list(now?: number): { pending: PairingRequest[]; approved: PairingApproval[] } | Promise<{ pending: PairingRequest[]; approved: PairingApproval[] }>;
  /**
   * Approves a pending code: its peer is allowed from now on (stored before returning).
   * @throws PairingError for a malformed, unknown or expired code; Error when it cannot be stored
   */
  approve(codeText: string, now?: number): PairingApproval | Promise<PairingApproval>;
  /**
   * Denies a pending code (the stranger stays out and gets no answer until the code would have
   * expired), or revokes an approval made with that code.
   * @throws PairingError for a malformed or unknown code
   */
  deny(codeText: string, now?: number): { code: string; revoked: boolean } | Promise<{ code: string; revoked: boolean }>;
}

/**
 * The pairing requests and approvals of one state directory. Methods are synchronous (small
 * file, written rarely: once per new stranger and per operator decision).
 */
export class PairingStore implements PairingBook {
  private data: PairingData = emptyPairing();
  /** `mtimeMs:size` of the file as last read or written; "" = absent. */
  private stamp = "";

  /** @param file the JSON file (`<state dir>/pairing.json`) */
  constructor(readonly file: string) {
    this.refresh();
  }

  /** The store of `stateDir` (`<stateDir>/pairing.json`). */
  static inStateDir(stateDir: string): PairingStore {
    return new PairingStore(join(stateDir, PAIRING_FILE));
  }

  /** Re-reads the file when another process changed it. A corrupt file reads as empty (logged by the caller's status); never throws. */
  private refresh(): void {
    let stamp = "";
    try {
      const st = statSync(this.file);
      stamp = `${st.mtimeMs}:${st.size}`;
    } catch {
      stamp = "";
    }
    if (stamp === this.stamp) return;
    this.stamp = stamp;
    if (stamp === "") {
      this.data = emptyPairing();
      return;
    }
    try {
      this.data = parsePairing(readFileSync(this.file, "utf8"));
    } catch {
      this.data = emptyPairing();
    }
  }

  /** Writes the file atomically with mode 0600. @throws Error from the file system (full disk, ...) */
  private save(): void {
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(this.data, null, 2)}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.file);
    const st = statSync(this.file);
    this.stamp = `${st.mtimeMs}:${st.size}`;
  }

  /** Runs a rule on the file's data (re-read when it changed) and saves when it changed. */
  private apply<T>(rule: (data: PairingData) => { result: T; changed: boolean }): T {
    this.refresh();
    const { result, changed } = rule(this.data);
    if (changed) this.save();
    return result;
  }

  /** A copy of the file's data (re-read when it changed): what a bus's store imports at its first start. */
  snapshot(): PairingData {
    this.refresh();
    return JSON.parse(JSON.stringify(this.data)) as PairingData;
  }

  /** Whether the operator approved this peer (re-reads the file when it changed). */
  isApproved(who: PairingPeer): boolean {
    this.refresh();
    return pairingRules.isApproved(this.data, who);
  }

  /** See {@link PairingBook.request}. @throws Error when the file cannot be written */
  request(who: PairingPeer, now = Date.now()): PairingAsk {
    return this.apply((d) => pairingRules.request(d, who, now));
  }

  /** See {@link PairingBook.list}. */
  list(now = Date.now()): { pending: PairingRequest[]; approved: PairingApproval[] } {
    this.refresh();
    return pairingRules.list(this.data, now);
  }

  /** See {@link PairingBook.approve}. @throws PairingError; Error when the file cannot be written */
  approve(codeText: string, now = Date.now()): PairingApproval {
    return this.apply((d) => pairingRules.approve(d, codeText, now));
  }

  /** See {@link PairingBook.deny}. @throws PairingError */
  deny(codeText: string, now = Date.now()): { code: string; revoked: boolean } {
    return this.apply((d) => pairingRules.deny(d, codeText, now));
  }
}

function isEntry(v: unknown): v is PairingRequest & PairingApproval {
  const o = v as Record<string, unknown> | null;
  return (
    typeof o === "object" &&
    o !== null &&
    typeof o.code === "string" &&
    typeof o.channel === "string" &&
    typeof o.account === "string" &&
    typeof o.peer === "string"
  );
}
