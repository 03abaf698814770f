import type { IHookFunctions, IHttpRequestMethods, IHttpRequestOptions, ILoadOptionsFunctions } from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

export const CREDENTIAL_NAME = 'sluiceApi';

export interface SluiceResponse {
  statusCode: number;
  body: unknown;
}

type ApiContext = IHookFunctions | ILoadOptionsFunctions;

/**
 * Calls the Sluice API with the node's credentials. Every status comes back to the caller
 * (nothing throws on a 404), because a 404 is an expected answer for checkExists and delete.
 */
export async function sluiceRequest(
  ctx: ApiContext,
  method: IHttpRequestMethods,
  path: string,
  body?: Record<string, unknown>,
): Promise<SluiceResponse> {
  const credentials = await ctx.getCredentials(CREDENTIAL_NAME);
  const baseUrl = String(credentials.baseUrl ?? '').replace(/\/+$/, '');
  const options: IHttpRequestOptions = {
    method,
    url: `${baseUrl}${path}`,
    json: true,
    returnFullResponse: true,
    ignoreHttpStatusErrors: true,
  };
  if (body !== undefined) options.body = body as IHttpRequestOptions['body'];
  const response = (await ctx.helpers.httpRequestWithAuthentication.call(ctx, CREDENTIAL_NAME, options)) as {
    statusCode: number;
    body: unknown;
  };
  return { statusCode: response.statusCode, body: response.body };
}

/** Sluice's error message from `{"error": {"code", "message"}}`, when the body has one. */
function errorMessage(body: unknown): string {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (error && typeof error.message === 'string') return typeof error.code === 'string' ? `${error.code}: ${error.message}` : error.message;
  return typeof body === 'string' && body ? body.slice(0, 300) : 'no error message';
}

/** An error for an answer the trigger cannot work with, naming the call and Sluice's reason. */
export function unexpectedResponse(ctx: ApiContext, what: string, response: SluiceResponse): NodeOperationError {
  const hint =
    response.statusCode === 401
      ? 'Check the API key in the Sluice credentials.'
      : response.statusCode === 403
        ? 'The API key needs the admin role to manage hooks.'
        : undefined;
  return new NodeOperationError(ctx.getNode(), `Sluice answered ${response.statusCode} to ${what} (${errorMessage(response.body)})`, {
    description: hint,
  });
}
