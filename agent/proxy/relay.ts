// The L4 data path: bytes between two duplex ends (TCP sockets or tunnel streams), with backpressure
// (pipe pauses the reader when the writer's buffer is full, so nothing buffers without bound), half-close
// (a FIN on one side becomes end() on the other, the other direction keeps flowing) and reset propagation
// (an RST or error on one side resets the other: RST for TCP, RST_STREAM CONNECT_ERROR for a tunnel stream,
// the mapping RFC 9113 §8.5 defines for CONNECT).
import { Socket } from 'node:net';
import { constants as h2, type Http2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';

/**
 * Seam for splicing a connection that needs no L7 work in the kernel (a sockmap + sk_skb verdict program),
 * so its bytes never enter JavaScript. Returns a promise that settles when the spliced connection ends, or
 * undefined when it cannot splice this pair (then the relay runs in user space). No implementation yet.
 */
export interface KernelSplicer {
  trySplice(a: Socket, b: Socket): Promise<void> | undefined;
}

export interface RelayOptions {
  /** destroy both ends after this long with no bytes either way; 0 disables */
  idleTimeoutMs: number;
  splicer?: KernelSplicer | undefined;
}

/** Resets a duplex end the way its transport can: TCP RST, or RST_STREAM(CONNECT_ERROR) on a tunnel stream. */
export function resetEnd(end: Duplex): void {
  if (end.destroyed) return;
  if (end instanceof Socket) {
    try {
      end.resetAndDestroy();
    } catch {
      end.destroy();
    }
  } else if (isH2Stream(end)) {
    // Http2Stream.close() ends an open writable side (END_STREAM) before sending RST_STREAM, and the peer
    // would read that as a clean FIN first. Marking the writable side as ending makes it send only the RST.
    const ws = (end as unknown as { _writableState?: { ending: boolean } })._writableState;
    if (ws) ws.ending = true;
    end.close(h2.NGHTTP2_CONNECT_ERROR);
  } else {
    end.destroy();
  }
}

// node:http2 exports Http2Stream as a type only.
function isH2Stream(end: Duplex): end is Duplex & Http2Stream {
  return 'rstCode' in end && 'session' in end && typeof (end as Partial<Http2Stream>).close === 'function';
}

function closedCleanly(end: Duplex): boolean {
  if (isH2Stream(end) && end.rstCode !== undefined && end.rstCode !== h2.NGHTTP2_NO_ERROR) return false;
  return end.readableEnded && end.writableFinished;
}

/** Relays until both ends are closed. Resolves, never rejects: errors are propagated as resets. */
export function relay(down: Duplex, up: Duplex, opts: RelayOptions): Promise<void> {
  if (opts.splicer && down instanceof Socket && up instanceof Socket) {
    const spliced = opts.splicer.trySplice(down, up);
    if (spliced) return spliced;
  }
  if (down.destroyed || up.destroyed) {
    // One end went away while the other was being set up.
    resetEnd(down);
    resetEnd(up);
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    let open = 2;
    const onClose = (self: Duplex, other: Duplex) => () => {
      if (!closedCleanly(self)) resetEnd(other);
      if (--open === 0) resolve();
    };
    // Errors are reported by 'close' (reset the other side); listening here keeps them from throwing.
    const ignore = () => {};
    down.on('error', ignore);
    up.on('error', ignore);
    down.once('close', onClose(down, up));
    up.once('close', onClose(up, down));
    if (opts.idleTimeoutMs > 0) {
      const idle = () => {
        resetEnd(down);
        resetEnd(up);
      };
      // Both ends carry the same bytes, so one end's inactivity timer covers the connection.
      (down as Socket).setTimeout?.(opts.idleTimeoutMs, idle);
    }
    pipeHalf(down, up);
    pipeHalf(up, down);
  });
}

/**
 * pipe() with the FIN forwarded only for a clean end: a peer that is not Weft may send END_STREAM right
 * before RST_STREAM (node's own close() does); waiting one turn of the event loop lets the reset win.
 */
function pipeHalf(src: Duplex, dst: Duplex): void {
  src.pipe(dst, { end: false });
  src.once('end', () => {
    if (!isH2Stream(src)) return void dst.end();
    setImmediate(() => {
      if (src.rstCode !== undefined && src.rstCode !== h2.NGHTTP2_NO_ERROR) return;
      dst.end();
    });
  });
}
