// struct sockaddr_in / sockaddr_in6 as Buffers, for the few sockets the binding opens itself.
import { encodeIp } from './codec.js';

export const AF_INET = 2;
export const AF_INET6 = 10;

export function sockaddr(ip: string, port: number): { buf: Buffer; family: number } {
  const scratch = Buffer.alloc(16);
  const fam = encodeIp(ip, scratch, 0);
  if (fam === 4) {
    const b = Buffer.alloc(16);
    b.writeUInt16LE(AF_INET, 0);
    b.writeUInt16BE(port, 2);
    scratch.copy(b, 4, 0, 4);
    return { buf: b, family: AF_INET };
  }
  const b = Buffer.alloc(28);
  b.writeUInt16LE(AF_INET6, 0);
  b.writeUInt16BE(port, 2);
  scratch.copy(b, 8, 0, 16);
  return { buf: b, family: AF_INET6 };
}
