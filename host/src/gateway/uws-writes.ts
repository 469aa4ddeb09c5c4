/**
 * WebSocket frames to uWS sockets gathered per event-loop turn and written corked
 * ({@link CorkedWrites}). uWS writes a frame sent outside one of its own callbacks at once, one
 * `send` syscall per frame; a turn's events (accepted, deltas, tool calls, the result) and the
 * frames of other sessions on the same connection mostly become ready in the same event-loop turn.
 * Gathered and written inside `ws.cork`, they leave in one write per socket per turn. Measured with
 * 50 sessions on 10 connections (docs/architecture.md, "Gateway CPU per turn").
 *
 * Order is kept: frames of one socket are written in the order they were sent. A frame waits at
 * most until the `setImmediate` after the current event-loop turn.
 */
import type * as UWS from "@trufflesuite/uws-js-unofficial";

/** One frame: text (JSON) or binary (MessagePack). */
export type Frame = string | Uint8Array;

/** A socket's pending frames, and what to do when uWS drops one at its backpressure limit. */
interface Pending {
  ws: UWS.WebSocket<unknown>;
  frames: Frame[];
  bytes: number;
  /** Called (once per flush at most) when uWS refused a frame (status 2): the socket is closed by the caller. */
  onDropped: () => void;
}

/** Gathers frames per socket and writes them corked once per event-loop turn. */
export class CorkedWrites {
  private readonly pending = new Map<UWS.WebSocket<unknown>, Pending>();
  private scheduled = false;

  /**
   * Queues `frame` for `ws`. `onDropped` runs when uWS drops a frame at its backpressure limit
   * (the caller closes the connection: a frame is never lost silently).
   */
  send(ws: UWS.WebSocket<unknown>, frame: Frame, onDropped: () => void): void {
    let p = this.pending.get(ws);
    if (p === undefined) {
      p = { ws, frames: [], bytes: 0, onDropped };
      this.pending.set(ws, p);
    }
    p.frames.push(frame);
    p.bytes += typeof frame === "string" ? frame.length : frame.byteLength;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Bytes queued for `ws` and not yet handed to uWS (approximate for text: UTF-16 units). */
  queuedBytes(ws: UWS.WebSocket<unknown>): number {
    return this.pending.get(ws)?.bytes ?? 0;
  }

  /** Drops what is queued for `ws` (the socket closed under us: nothing can be written). */
  forget(ws: UWS.WebSocket<unknown>): void {
    this.pending.delete(ws);
  }

  /** Writes what is queued for `ws` now (before the caller ends the socket, so its last frames go first). */
  flushNow(ws: UWS.WebSocket<unknown>): void {
    const p = this.pending.get(ws);
    if (p === undefined) return;
    this.pending.delete(ws);
    this.write(p);
  }

  /** Writes everything queued: one cork per socket. */
  readonly flush = (): void => {
    this.scheduled = false;
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) this.write(p);
  };

  private write(p: Pending): void {
    let dropped = false;
    try {
      p.ws.cork(() => {
        for (const frame of p.frames) {
          const status = typeof frame === "string" ? p.ws.send(frame, false) : p.ws.send(frame, true);
          // 2 = dropped at uWS's backpressure limit: stop writing to this socket.
          if (status === 2) {
            dropped = true;
            break;
          }
        }
      });
    } catch {
      return; // closed by the peer in between (uWS throws on a closed socket); its close handler runs
    }
    if (dropped) p.onDropped();
  }
}
