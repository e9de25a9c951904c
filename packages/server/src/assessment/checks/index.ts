/** Every audit check, in the order a run evaluates them. */
import { apiKeyRisky, operatorWithoutMfa } from './access.js';
import { certificateAgeBeyondPolicy, keyQualityWeak, revokedCaIssuedActive, revokedCaStillActive } from './ca-trust.js';
import { caCertificateExpiring, deviceCertificateExpiring, revokedCertificateConnected } from './certificates.js';
import type { Check } from './check.js';
import { deviceCertificateShared, mqttClientIdConflict } from './connections.js';
import { auditChainBroken, backupNotDrilled, backupStale } from './integrity.js';
import { symmetricKeyOld, updateMetadataExpiring } from './keys.js';
import { disclosureOverdue, productWithoutSupportPeriod } from './products.js';
import { plainMqttPort, rateLimitsWeak, trustProxyOn } from './settings.js';
import { firmwareKnownVulnerability } from './vulnerabilities.js';

export const AUDIT_CHECKS: readonly Check[] = [
  deviceCertificateExpiring,
  caCertificateExpiring,
  revokedCertificateConnected,
  revokedCaIssuedActive,
  revokedCaStillActive,
  keyQualityWeak,
  certificateAgeBeyondPolicy,
  operatorWithoutMfa,
  apiKeyRisky,
  plainMqttPort,
  rateLimitsWeak,
  trustProxyOn,
  auditChainBroken,
  backupStale,
  backupNotDrilled,
  symmetricKeyOld,
  updateMetadataExpiring,
  productWithoutSupportPeriod,
  disclosureOverdue,
  firmwareKnownVulnerability,
  deviceCertificateShared,
  mqttClientIdConflict,
];

export type { Check, CheckContext, Observation } from './check.js';
