import type { ServerConnection } from '@jupyterlab/services';

import { requestAPI } from './request';
import {
  IAsk,
  ICluster,
  IConnection,
  IMineValues,
  INewCluster,
  ISshConfigPreview,
  ISshConfigWritten
} from './tokens';

/** `GET hy2fa/asks`. */
export interface IAsksReply {
  asks: IAsk[];
  enabled: boolean;
  /** Why the askpass bridge is off, in words; null when it is on. */
  message?: string | null;
}

/** One line of `GET hy2fa/doctor`: what was checked, its mark, and what to do. */
export interface IDoctorCheck {
  /** What was checked: an id (`host_key`), or `platform:<what>`. */
  check: string;
  status: 'ok' | 'problem' | 'info';
  detail: string;
  /** What to do; empty when there is nothing to do. */
  fix: string;
}

/** `GET hy2fa/doctor`: this machine's checks, and the cluster's when one was asked. */
export interface IDoctorReport {
  cluster: string | null;
  checks: IDoctorCheck[];
}

/** The REST calls the model makes; a fake replaces it in unit tests. */
export interface IBackend {
  version(): Promise<string>;
  clusters(): Promise<ICluster[]>;
  connections(): Promise<IConnection[]>;
  connect(cluster: string, user?: string): Promise<IConnection>;
  answer(
    name: string,
    response: string,
    promptId?: number
  ): Promise<IConnection>;
  disconnect(name: string): Promise<IConnection>;
  /**
   * The questions of kernels' ssh waiting in Lab, whether the askpass bridge is on, and
   * why not (the server's words; absent from older servers).
   */
  asks(): Promise<IAsksReply>;
  answerAsk(id: string, response: string): Promise<void>;
  /** Cancel: the ssh that asks ends. */
  cancelAsk(id: string): Promise<void>;
  /** `PATCH hy2fa/clusters/<name>`: the person's values (`null` forgets one); the row. */
  setMine(name: string, values: IMineValues): Promise<ICluster>;
  /** `POST hy2fa/clusters`: a cluster of the person's own; its row. */
  addCluster(cluster: INewCluster): Promise<ICluster>;
  /**
   * `DELETE hy2fa/clusters/<name>`: the row as the site gives it (200), or null when it
   * was a cluster of the person's own, now gone (204).
   */
  forgetMine(name: string): Promise<ICluster | null>;
  /** `GET hy2fa/clusters/<name>/config-ssh`: what would be written. */
  sshConfigPreview(name: string): Promise<ISshConfigPreview>;
  /** `POST hy2fa/clusters/<name>/config-ssh`: write it. */
  writeSshConfig(name: string): Promise<ISshConfigWritten>;
  /** `DELETE hy2fa/clusters/<name>/config-ssh`: take it out. */
  removeSshConfig(name: string): Promise<void>;
}

const json = (body: unknown): RequestInit => ({
  method: 'POST',
  body: JSON.stringify(body)
});

const path = (name: string): string =>
  `connections/${encodeURIComponent(name)}`;

const askPath = (id: string): string => `asks/${encodeURIComponent(id)}`;

const clusterPath = (name: string): string =>
  `clusters/${encodeURIComponent(name)}`;

/** The server extension's REST API, through the application's server connection. */
export class RestBackend implements IBackend {
  /**
   * @param serverSettings The application's (`app.serviceManager.serverSettings`).
   */
  constructor(readonly serverSettings: ServerConnection.ISettings) {}

  async version(): Promise<string> {
    return (await this.request<{ version: string }>('version')).version;
  }

  async clusters(): Promise<ICluster[]> {
    return (await this.request<{ clusters: ICluster[] }>('clusters')).clusters;
  }

  async connections(): Promise<IConnection[]> {
    return (await this.request<{ connections: IConnection[] }>('connections'))
      .connections;
  }

  connect(cluster: string, user?: string): Promise<IConnection> {
    return this.request<IConnection>(
      'connections',
      json(user ? { cluster, user } : { cluster })
    );
  }

  answer(
    name: string,
    response: string,
    promptId?: number
  ): Promise<IConnection> {
    const body: { response: string; prompt_id?: number } = { response };
    if (promptId !== undefined) {
      body.prompt_id = promptId;
    }
    return this.request<IConnection>(`${path(name)}/answer`, json(body));
  }

  disconnect(name: string): Promise<IConnection> {
    return this.request<IConnection>(path(name), { method: 'DELETE' });
  }

  async asks(): Promise<IAsksReply> {
    const data = await this.request<Partial<IAsksReply> | null>('asks');
    return {
      asks: data?.asks ?? [],
      enabled: data?.enabled ?? false,
      message: typeof data?.message === 'string' ? data.message : null
    };
  }

  async answerAsk(id: string, response: string): Promise<void> {
    await this.request<null>(`${askPath(id)}/answer`, json({ response }));
  }

  async cancelAsk(id: string): Promise<void> {
    await this.request<null>(askPath(id), { method: 'DELETE' });
  }

  setMine(name: string, values: IMineValues): Promise<ICluster> {
    return this.request<ICluster>(clusterPath(name), {
      method: 'PATCH',
      body: JSON.stringify(values)
    });
  }

  addCluster(cluster: INewCluster): Promise<ICluster> {
    return this.request<ICluster>('clusters', json(cluster));
  }

  async forgetMine(name: string): Promise<ICluster | null> {
    const row = await this.request<ICluster | null>(clusterPath(name), {
      method: 'DELETE'
    });
    return row ?? null;
  }

  sshConfigPreview(name: string): Promise<ISshConfigPreview> {
    return this.request<ISshConfigPreview>(`${clusterPath(name)}/config-ssh`);
  }

  writeSshConfig(name: string): Promise<ISshConfigWritten> {
    return this.request<ISshConfigWritten>(`${clusterPath(name)}/config-ssh`, {
      method: 'POST'
    });
  }

  async removeSshConfig(name: string): Promise<void> {
    await this.request<unknown>(`${clusterPath(name)}/config-ssh`, {
      method: 'DELETE'
    });
  }

  /**
   * `GET hy2fa/doctor?cluster=`: what a login needs, checked by the server without logging
   * in (`null`: this machine only).
   */
  doctor(cluster: string | null): Promise<IDoctorReport> {
    const query = cluster ? `?cluster=${encodeURIComponent(cluster)}` : '';
    return this.request<IDoctorReport>(`doctor${query}`);
  }

  private request<T>(endPoint: string, init?: RequestInit): Promise<T> {
    return requestAPI<T>(endPoint, this.serverSettings, init);
  }
}
