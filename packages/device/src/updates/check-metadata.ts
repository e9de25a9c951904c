/**
 * The update check's one request (UPDATE_METADATA_PATH, docs/updates.md "One request per check"):
 * the agent says what it trusts (its director root, image root and snapshot versions, its product)
 * and receives the director's newer roots and its targets, and the image repository's newer
 * roots, timestamp, snapshot, top-level and product targets, which the director check and tuf-js
 * then verify exactly as if each had been fetched alone (director.ts, repository.ts). A platform
 * without the route (404) gets the requests one by one, as before it existed.
 */
import { UPDATE_METADATA_PATH, type UpdateMetadata, type UpdateMetadataQuery } from '@bulwark/protocol';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';
import { MetadataInvalidError } from './errors.js';
import { httpsGetBytes, type TlsIdentity } from './https.js';

/** The most bytes read for the answer: its parts, fetched alone, are bounded by TUF_LIMITS and the director's 512 KiB. */
export const MAX_UPDATE_METADATA_BYTES = 16 * 1024 * 1024;

/** Fetches what one update check reads; null when the platform does not serve it in one answer. */
export async function fetchUpdateMetadata(
  baseUrl: string,
  tls: TlsIdentity,
  query: UpdateMetadataQuery,
  timeoutMs?: number,
): Promise<UpdateMetadata | null> {
  const url = new URL(`${baseUrl.replace(/\/+$/, '')}${UPDATE_METADATA_PATH}`);
  for (const [name, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(name, String(value));
  let bytes: Buffer;
  try {
    bytes = await httpsGetBytes(url.toString(), tls, MAX_UPDATE_METADATA_BYTES, timeoutMs);
  } catch (error) {
    if (error instanceof DownloadHTTPError && error.statusCode === 404) return null;
    throw error;
  }
  return parseUpdateMetadata(bytes);
}

/** The answer's shape, checked before any part of it is used (each file is verified later, by its own rules). */
export function parseUpdateMetadata(bytes: Buffer): UpdateMetadata {
  let answer: unknown;
  try {
    answer = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new MetadataInvalidError(`The update metadata answer is not JSON: ${(error as Error).message}`);
  }
  const { director, repository } = (answer ?? {}) as Partial<Record<'director' | 'repository', Record<string, unknown>>>;
  const problem =
    typeof director !== 'object' || director === null
      ? 'no director part'
      : !Array.isArray(director.roots) || !director.roots.every((root) => typeof root === 'string')
        ? 'director.roots is not a list of texts'
        : !isVersion(director.latestRoot)
          ? 'director.latestRoot is not a version'
          : typeof director.targets !== 'string'
            ? 'director.targets is not a text'
            : typeof repository !== 'object' || repository === null
              ? 'no repository part'
              : !isVersion(repository.latestRoot, 0)
                ? 'repository.latestRoot is not a version'
                : typeof repository.files !== 'object' ||
                    repository.files === null ||
                    Array.isArray(repository.files) ||
                    !Object.values(repository.files).every((file) => typeof file === 'string')
                  ? 'repository.files is not a map of texts'
                  : null;
  if (problem) throw new MetadataInvalidError(`The update metadata answer is malformed: ${problem}`);
  return answer as UpdateMetadata;
}

const isVersion = (value: unknown, minimum = 1): value is number => Number.isSafeInteger(value) && (value as number) >= minimum;
