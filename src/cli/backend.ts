import { initBackend, resolveBackendRequest, type BackendInfo } from '../backend/select.js';
import type { Logger } from '../log.js';

/** Starts the tfjs backend that the flag or DARKROOM_BACKEND requests, and prints which one runs. */
export async function startBackend(flag: unknown, log: Logger): Promise<BackendInfo> {
  const request = resolveBackendRequest(typeof flag === 'string' ? flag : undefined);
  const info = await initBackend(request);
  for (const attempt of info.tried) log.debug(`backend ${attempt.name} unavailable: ${attempt.error}`);
  log.info(`tfjs backend: ${info.name} (${info.package})`);
  return info;
}
