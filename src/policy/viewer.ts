/** Who is asking. `null` is an anonymous caller. */
export interface Viewer {
  id: string;
}
