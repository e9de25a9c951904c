/**
 * Schemas shared by the emailed-token flows (password reset, sign-up, verification, invitations).
 */
import { Type } from 'typebox';
import { Strict } from '../../transport/http/schemas.js';

/** A single-use token from a mail (`bwt_…`). */
export const OneTimeToken = Type.String({ minLength: 1, maxLength: 128, description: 'The token from the email (bwt_…)' });

/** The one answer of a request whose outcome must not reveal whether an account exists. */
export const Accepted = Strict({ status: Type.Literal('accepted'), message: Type.String() });
