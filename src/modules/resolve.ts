// The steps every domain module's resolvers share, written once: a signed-in
// caller, a row by id through its loader, a to-one field through a loader,
// and create/update/delete through a service on the policy client.
import type DataLoader from "dataloader";
import { requireViewer, type GraphQLContext } from "../context.js";
import { orNotFound } from "../errors.js";
import type { Loaders, RowLoader } from "../loaders/index.js";
import type { PolicyClient } from "../policy/client.js";
import type { Viewer } from "../policy/viewer.js";
import { looksLikeId } from "./validation.js";

/** A root field for signed-in callers only: UNAUTHENTICATED otherwise. */
export const signedIn =
  <Args, Result>(resolve: (args: Args, context: GraphQLContext, viewer: Viewer) => Result) =>
  (_parent: unknown, args: Args, context: GraphQLContext): Result =>
    resolve(args, context, requireViewer(context));

/** `thing(id)`: the row through its loader; an id no row can have is simply null. */
export const rowById = <Row>(loader: (loaders: Loaders) => DataLoader<string, Row | null>) =>
  signedIn(({ id }: { id: string }, { loaders }) => (looksLikeId(id) ? loader(loaders).load(id) : null));

/**
 * A to-one field whose row is readable whenever its parent is; if it is not
 * (ACCESS.md: e.g. the owner of a readable list shares no space with me), the
 * field fails with NOT_FOUND. A row its loader already holds (loaded with a
 * page, see loaders/index.ts) is returned as it is: no promise per field.
 */
export const related =
  <Parent, Row>(what: string, loaderOf: (loaders: Loaders) => RowLoader<Row>, idOf: (parent: Parent) => string) =>
  (parent: Parent, _args: unknown, { loaders }: GraphQLContext): Row | Promise<Row> => {
    const loader = loaderOf(loaders);
    const id = idOf(parent);
    const loaded = loader.peek(id);
    if (loaded !== undefined) return orNotFound(loaded, what);
    return loader.load(id).then((row) => orNotFound(row, what));
  };

/** The service behind createX(input), updateX(id, input) and deleteX(id). */
export interface EntityService<CreateInput, UpdateInput, Row> {
  create(db: PolicyClient, viewerId: string, input: CreateInput): Promise<Row>;
  update(db: PolicyClient, id: string, input: UpdateInput): Promise<Row>;
  delete(db: PolicyClient, id: string): Promise<string>;
}

export const entityMutations = <CreateInput, UpdateInput, Row>(service: EntityService<CreateInput, UpdateInput, Row>) => ({
  create: signedIn(({ input }: { input: CreateInput }, { db }, viewer) => service.create(db, viewer.id, input)),
  update: signedIn(({ id, input }: { id: string; input: UpdateInput }, { db }) => service.update(db, id, input)),
  delete: signedIn(({ id }: { id: string }, { db }) => service.delete(db, id)),
});
