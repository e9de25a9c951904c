/** The assessment routes' shared schemas: a severity (of a finding, an advisory, an anomaly rule) and a finding's state. */
import { Type } from 'typebox';
import { FINDING_STATES, SEVERITIES, type FindingState as FindingStateName, type Severity as SeverityName } from '@bulwark/protocol';

export const Severity = Type.Unsafe<SeverityName>(Type.Union(SEVERITIES.map((severity) => Type.Literal(severity))));
export const FindingState = Type.Unsafe<FindingStateName>(Type.Union(FINDING_STATES.map((state) => Type.Literal(state))));
