// Server TLS credentials whose certificate can be replaced while the server runs (grpc-js applies the new
// secure context to new connections). The controller re-issues its serving certificate after a root
// rotation, so agents that only trust the new root can still reach it; open streams are not interrupted.
import * as grpc from '@grpc/grpc-js';

import type { ServingCert } from './server.js';

export class ReloadableServerCredentials extends grpc.ServerCredentials {
  constructor(cert: ServingCert) {
    super({ requestCert: false }, { cert: [Buffer.from(cert.certChainPem)], key: [Buffer.from(cert.keyPem)] });
  }

  reload(cert: ServingCert): void {
    this.updateSecureContextOptions({ cert: [Buffer.from(cert.certChainPem)], key: [Buffer.from(cert.keyPem)] });
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}
