/**
 * OSV records from the file system (what the CLI and the CI check read): JSON files, each holding
 * one record, an array of them or an OSV API answer, or a directory of such files (`*.json`,
 * sorted by name, not recursive). Each file is bounded in size.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AdvisoryInvalidError } from './errors.js';
import { recordsOf } from './osv.js';

export const MAX_FILE_BYTES = 20 * 1024 * 1024;

function readJson(file: string): unknown {
  const size = statSync(file).size;
  if (size > MAX_FILE_BYTES) throw new AdvisoryInvalidError(`${file} is ${size} bytes; at most ${MAX_FILE_BYTES} are read`);
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw new AdvisoryInvalidError(`${file} is not valid JSON`);
  }
}

/** The records of the files and directories named, and the files they came from. */
export function readOsvPaths(paths: string[]): { records: unknown[]; files: string[] } {
  const files: string[] = [];
  for (const path of paths) {
    if (statSync(path).isDirectory())
      files.push(
        ...readdirSync(path)
          .filter((name) => name.endsWith('.json'))
          .sort()
          .map((name) => join(path, name)),
      );
    else files.push(path);
  }
  return { records: files.flatMap((file) => recordsOf(readJson(file), file)), files };
}

/** A CycloneDX document from a file. */
export function readSbomFile(file: string): unknown {
  return readJson(file);
}
