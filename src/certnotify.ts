import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import type { TranslationBundle } from '@jupyterlab/translation';
import type { IDisposable } from '@lumino/disposable';

import { ICertificate, ICluster, IHy2faModel } from './tokens';
import {
  certificateId,
  renewConfirmWords,
  renewWords,
  shouldWarn
} from './words';

/**
 * A Lab warning before a certificate cluster's certificate runs out, once per
 * certificate (key + end), with a Renew action: with no master, a login (which renews
 * it); with a live master, a renewal needs a new login, so Renew asks first, then
 * disconnects and logs in. A new certificate takes the old warning away.
 */
export class CertificateWarnings implements IDisposable {
  constructor(
    private readonly model: IHy2faModel,
    private readonly options: {
      label: (cluster: string) => string;
      trans: TranslationBundle;
      /** How often to look again without a change (ms). */
      every?: number;
    }
  ) {
    model.changed.connect(this.check, this);
    this._timer = window.setInterval(
      () => this.check(),
      options.every ?? 30000
    );
    this.check();
  }

  get isDisposed(): boolean {
    return this._timer === null;
  }

  dispose(): void {
    if (this._timer === null) {
      return;
    }
    window.clearInterval(this._timer);
    this._timer = null;
    this.model.changed.disconnect(this.check, this);
  }

  /** Warn about each certificate that entered its renew window (once each). */
  check(): void {
    const now = Date.now();
    for (const cluster of this.model.clusters) {
      const certificate = this.certificateOf(cluster);
      const shown = this._shown.get(cluster.name);
      const id = certificate ? certificateId(certificate) : null;
      if (shown && shown.certificate !== id) {
        // renewed (or gone): the old warning has nothing more to say
        Notification.dismiss(shown.notification);
        this._shown.delete(cluster.name);
      }
      if (!certificate || !id || this._warned.has(id)) {
        continue;
      }
      if (!shouldWarn(certificate, now)) {
        continue;
      }
      this._warned.add(id);
      this._shown.set(cluster.name, {
        certificate: id,
        notification: this.warn(cluster, certificate, now)
      });
    }
  }

  private certificateOf(cluster: ICluster): ICertificate | null {
    return (
      cluster.certificate ??
      this.model.connectionFor(cluster)?.certificate ??
      null
    );
  }

  private connected(cluster: ICluster): boolean {
    const state = this.model.connectionFor(cluster)?.state ?? cluster.state;
    return state === 'connected';
  }

  private warn(
    cluster: ICluster,
    certificate: ICertificate,
    now: number
  ): string {
    const { trans } = this.options;
    const label = this.options.label(cluster.name);
    return Notification.warning(
      renewWords(label, certificate, this.connected(cluster), trans, now),
      {
        autoClose: false,
        actions: [
          {
            label: trans.__('Renew'),
            caption: trans.__(
              'Log in to %1 again for a new certificate',
              label
            ),
            displayType: 'accent',
            callback: () => void this.renew(cluster.name)
          }
        ]
      }
    );
  }

  /** Renew: a login; with a live master, only once the person agrees to end it. */
  async renew(name: string): Promise<void> {
    const { trans } = this.options;
    const label = this.options.label(name);
    const cluster = this.model.clusters.find(c => c.name === name);
    const connection = cluster ? this.model.connectionFor(cluster) : undefined;
    try {
      if (cluster && this.connected(cluster)) {
        const words = renewConfirmWords(label, trans);
        const result = await showDialog({
          title: words.title,
          body: words.body,
          buttons: [
            Dialog.cancelButton({ label: trans.__('Keep the master') }),
            Dialog.warnButton({ label: words.ok })
          ]
        });
        if (!result.button.accept) {
          return;
        }
        await this.model.disconnect(connection?.id ?? name);
      }
      const user =
        connection && connection.name !== connection.cluster
          ? connection.user
          : undefined;
      await this.model.connect(name, user);
    } catch (error) {
      Notification.error(
        trans.__(
          'Could not renew the certificate for %1: %2',
          label,
          (error as Error)?.message ?? String(error)
        ),
        { autoClose: 8000 }
      );
    }
  }

  private _timer: number | null = null;
  /** The certificates warned about (each once). */
  private _warned = new Set<string>();
  /** Cluster -> its warning on screen, and which certificate it is about. */
  private _shown = new Map<
    string,
    { certificate: string; notification: string }
  >();
}
