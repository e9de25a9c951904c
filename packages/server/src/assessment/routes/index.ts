/** The assessment domain's route plugins: findings and runs, disclosures, the compliance report, advisories, anomaly rules. */
export { assessmentRoutes, complianceRoutes, disclosureRoutes } from './findings.js';
export { advisoryRoutes } from './advisories.js';
export { anomalyRoutes } from './anomaly.js';
