import type { TranslationBundle } from '@jupyterlab/translation';

import type { IBackend } from '../api';
import { Hy2faModel } from '../model';
import type {
  IAsk,
  ICluster,
  IMineValues,
  INewCluster,
  ISshConfigPreview,
  ISshConfigWritten
} from '../tokens';
import { FRONTEND_VERSION } from '../version';

/** As JupyterLab's null translator does: the English text, with %1, %2 the arguments. */
export const trans = {
  __: (text: string, ...args: unknown[]) =>
    text.replace(/%(\d+)/g, (_, n) => String(args[Number(n) - 1])),
  _n: (singular: string, plural: string, n: number, ...args: unknown[]) =>
    (n === 1 ? singular : plural).replace(/%(\d+)/g, (_, i) =>
      String([n, ...args][Number(i) - 1])
    )
} as unknown as TranslationBundle;

/** A model whose poll does not run: the test calls `refresh()` when it wants. */
export function quietModel(
  backend: IBackend,
  options: Partial<Hy2faModel.IOptions> = {}
): Hy2faModel {
  return new Hy2faModel({
    backend,
    frontendVersion: FRONTEND_VERSION,
    autoStart: false,
    ...options
  });
}

export const sleep = (ms: number): Promise<void> =>
  new Promise(resolve => setTimeout(resolve, ms));

/** Wait until `done()` holds, for at most `ms`. */
export async function waitFor(done: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!done()) {
    if (Date.now() > until) {
      throw new Error('timed out');
    }
    await sleep(5);
  }
}

/**
 * The questions of kernels' ssh, for fake backends whose tests have none: no ask waits,
 * and answering or cancelling one does nothing.
 */
export abstract class NoAsks {
  async asks(): Promise<{ asks: IAsk[]; enabled: boolean }> {
    return { asks: [], enabled: true };
  }
  async answerAsk(id: string, response: string): Promise<void> {
    return;
  }
  async cancelAsk(id: string): Promise<void> {
    return;
  }
}

/**
 * The calls of the person's own cluster settings, for fake backends whose tests make
 * none: each fails, so a test that makes one by mistake says so.
 */
export abstract class NoClusterSettings extends NoAsks {
  async setMine(name: string, values: IMineValues): Promise<ICluster> {
    throw new Error(`not expected: setMine ${name} ${JSON.stringify(values)}`);
  }
  async addCluster(cluster: INewCluster): Promise<ICluster> {
    throw new Error(`not expected: addCluster ${cluster.name}`);
  }
  async forgetMine(name: string): Promise<ICluster | null> {
    throw new Error(`not expected: forgetMine ${name}`);
  }
  async sshConfigPreview(name: string): Promise<ISshConfigPreview> {
    throw new Error(`not expected: sshConfigPreview ${name}`);
  }
  async writeSshConfig(name: string): Promise<ISshConfigWritten> {
    throw new Error(`not expected: writeSshConfig ${name}`);
  }
  async removeSshConfig(name: string): Promise<void> {
    throw new Error(`not expected: removeSshConfig ${name}`);
  }
}
