import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { ApiError } from './errors';

export { ApiError };

/**
 * Call the server extension's REST API under the server's base URL (`<base>/hy2fa/...`).
 *
 * @param endPoint The path under `hy2fa/`.
 * @param serverSettings The settings of the application's server connection
 *   (`app.serviceManager.serverSettings`): its base URL, token and XSRF handling.
 * @param init The request's method, body and headers.
 * @returns The reply's JSON body (`null` when empty).
 * @throws {ApiError} When the server answers with an error: its `{message, reason}`.
 * @throws {ServerConnection.NetworkError} When the server cannot be reached.
 */
export async function requestAPI<T>(
  endPoint: string,
  serverSettings: ServerConnection.ISettings,
  init: RequestInit = {}
): Promise<T> {
  const url = URLExt.join(serverSettings.baseUrl, 'hy2fa', endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, serverSettings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: any = null;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text };
    }
  }
  if (!response.ok) {
    throw new ApiError(
      data?.message ?? response.statusText,
      data?.reason ?? (response.status === 404 ? 'not_found' : 'error'),
      response.status
    );
  }
  return data as T;
}
