/**
 * The step-up rules of the devices domain. Every check goes through the accounts domain's
 * AccountsService.requireStepUp (auth.step_up_required), handed in by the composition root as a
 * StepUpCheck so that the domain does not import the accounts service.
 */
import type { Actor } from '../accounts/roles.js';

/** AccountsService.requireStepUp: throws unless the actor re-proved a factor recently. */
export type StepUpCheck = (actor: Actor) => void;

/**
 * Handing out a device credential (a certificate rotation's enrollment token, a symmetric key)
 * lets its holder act as the device: a person (a browser session, like disable and retire)
 * re-proves a factor first, so a stolen session cookie alone hands out nothing. An API key has no
 * factor to re-prove and keeps what its devices:write scope grants (automation, the assessment's
 * re-key), as does the CLI (the platform admin at the console).
 */
export function requireCredentialStepUp(actor: Actor, requireStepUp: StepUpCheck): void {
  if (actor.via !== 'api_key') requireStepUp(actor);
}
