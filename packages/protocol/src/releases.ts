/**
 * A firmware release as the API serves it (`GET /api/v1/updates/releases`, the answer to publishing
 * one): built by the server (server/src/updates/routes/releases.ts) and read by the console.
 */

/** What a release shows of its origin and tests, from attestations that passed its product's policy. */
export interface ReleaseProvenance {
  builder: string | null;
  repository: string | null;
  commit: string | null;
  tests: { result: 'PASSED' | 'WARNED'; passed: number; warned: number; configuration: string[] } | null;
  /** Key IDs that signed the attestations believed. */
  signedBy: string[];
}

export interface ReleaseView {
  id: string;
  productId: string;
  version: string;
  securityVersion: number;
  hardwareIds: string[];
  /** The image repository target: `<productId>/firmware-<version>.bin`. */
  targetName: string;
  sha256: string;
  length: number;
  notes: string;
  createdAt: string;
  /** Builder, source repository and commit, test results, from attestations the policy believed; null when none came. */
  provenance: ReleaseProvenance | null;
}
