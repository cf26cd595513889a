/** Who is asking. `null` is an anonymous caller. */
export interface Viewer {
  id: string;
  /**
   * The session of the token the caller signed in with. Only the session
   * operations read it; viewers made outside a request (seeds, benchmarks,
   * tests of the policy) may leave it out.
   */
  sessionId?: string;
}
