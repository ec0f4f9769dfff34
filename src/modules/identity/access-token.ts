import { jwtVerify, SignJWT } from 'jose';

/**
 * Short-lived signed access tokens (HS256 JWT): `sub` the user, `sid` the session.
 * The session is still checked on every request, so revocation is immediate.
 */
export class AccessTokens {
  private readonly key: Uint8Array;

  constructor(
    signingKey: string,
    private readonly ttlSeconds: number,
  ) {
    this.key = new TextEncoder().encode(signingKey);
  }

  sign(userId: string, sessionId: string): Promise<string> {
    return new SignJWT({ sid: sessionId })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(userId)
      .setIssuer('steward')
      .setIssuedAt()
      .setExpirationTime(`${this.ttlSeconds}s`)
      .sign(this.key);
  }

  /** The claims of a valid token, or null (bad signature, expired, malformed). */
  async verify(token: string): Promise<{ userId: string; sessionId: string } | null> {
    try {
      const { payload } = await jwtVerify(token, this.key, { issuer: 'steward', algorithms: ['HS256'] });
      if (typeof payload.sub !== 'string' || typeof payload.sid !== 'string') return null;
      return { userId: payload.sub, sessionId: payload.sid };
    } catch {
      return null;
    }
  }
}
