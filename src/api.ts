import { requestAPI } from './request';
import { IAsk, ICluster, IConnection } from './tokens';

/** The REST calls the model and the views make; a fake replaces it in unit tests. */
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
  /** The questions of kernels' ssh waiting in Lab, and whether the askpass bridge is on. */
  asks(): Promise<{ asks: IAsk[]; enabled: boolean }>;
  answerAsk(id: string, response: string): Promise<void>;
  /** Cancel: the ssh that asks ends. */
  cancelAsk(id: string): Promise<void>;
}

const json = (body: unknown): RequestInit => ({
  method: 'POST',
  body: JSON.stringify(body)
});

const path = (name: string): string =>
  `connections/${encodeURIComponent(name)}`;

const askPath = (id: string): string => `asks/${encodeURIComponent(id)}`;

export const restBackend: IBackend = {
  async version() {
    return (await requestAPI<{ version: string }>('version')).version;
  },
  async clusters() {
    return (await requestAPI<{ clusters: ICluster[] }>('clusters')).clusters;
  },
  async connections() {
    return (await requestAPI<{ connections: IConnection[] }>('connections'))
      .connections;
  },
  connect(cluster, user) {
    return requestAPI<IConnection>(
      'connections',
      json(user ? { cluster, user } : { cluster })
    );
  },
  answer(name, response, promptId) {
    const body: { response: string; prompt_id?: number } = { response };
    if (promptId !== undefined) {
      body.prompt_id = promptId;
    }
    return requestAPI<IConnection>(`${path(name)}/answer`, json(body));
  },
  disconnect(name) {
    return requestAPI<IConnection>(path(name), { method: 'DELETE' });
  },
  async asks() {
    const data = await requestAPI<{ asks?: IAsk[]; enabled?: boolean }>('asks');
    return { asks: data?.asks ?? [], enabled: data?.enabled ?? false };
  },
  async answerAsk(id, response) {
    await requestAPI<null>(`${askPath(id)}/answer`, json({ response }));
  },
  async cancelAsk(id) {
    await requestAPI<null>(askPath(id), { method: 'DELETE' });
  }
};
