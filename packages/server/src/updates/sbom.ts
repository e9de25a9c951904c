/**
 * CycloneDX JSON SBOM validation for releases. Skeleton: the signature is the contract.
 */
export interface SbomSummary {
  specVersion: string;
  components: number;
}

/** Checks a CycloneDX JSON document; throws a ValidationError (`update.sbom_invalid`) saying what is wrong. */
export function validateSbom(_document: unknown): SbomSummary {
  throw new Error('not implemented');
}
