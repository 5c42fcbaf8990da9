import type { TranslationBundle } from '@jupyterlab/translation';
import React, { useState } from 'react';

import { ConnectionState, ICertificate, IConnection } from './tokens';
import {
  certificateWords,
  deviceWords,
  expiredMasterWords,
  safeLink
} from './words';

/**
 * A certificate cluster's validity, on its own line apart from the master's state: "
 * certificate valid for 23 h 12 min", "certificate expired 5 min ago"; with a master
 * still up on an expired certificate, that it still runs and what a new login asks.
 */
export function CertificateLine(props: {
  certificate: ICertificate;
  state: ConnectionState;
  now: number;
  trans: TranslationBundle;
}): JSX.Element {
  const { certificate, trans } = props;
  const { text, expired } = certificateWords(certificate, trans, props.now);
  const until = certificate.valid_before
    ? new Date(certificate.valid_before).toLocaleString()
    : '';
  const details = [
    until ? trans.__('Valid until %1', until) : '',
    certificate.principals.length
      ? trans.__('for %1', certificate.principals.join(', '))
      : '',
    certificate.key ? trans.__('key %1', certificate.key) : ''
  ]
    .filter(Boolean)
    .join(' · ');
  return (
    <div
      className="jp-hy2fa-cert"
      data-expired={expired ? 'true' : 'false'}
      title={details}
    >
      <span className="jp-hy2fa-cert-text">{text}</span>
      {expired && props.state === 'connected' && (
        <div className="jp-hy2fa-cert-note" role="note">
          {expiredMasterWords(certificate, trans)}
        </div>
      )}
    </div>
  );
}

/**
 * A certificate cluster with no certificate on disk yet: that a login gets one, and from
 * where, so the first Connect's question (password + OTP for the issuer) is expected.
 */
export function NoCertificateLine(props: {
  from: string;
  trans: TranslationBundle;
}): JSX.Element {
  return (
    <div className="jp-hy2fa-cert" data-missing="true">
      <span className="jp-hy2fa-cert-text">
        {props.trans.__(
          'No certificate yet: Connect gets one from %1',
          props.from
        )}
      </span>
    </div>
  );
}

/** Copy a text: the async clipboard, else a selection and `copy`. */
async function copyText(text: string, field: HTMLInputElement | null) {
  if (navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // not allowed here (no secure context): the selection below
    }
  }
  if (field) {
    field.focus();
    field.select();
    return document.execCommand('copy');
  }
  return false;
}

/**
 * The link and code a site's device-flow tool printed: the link opens in a new tab
 * (http and https only, checked again here), the code in a read-only monospace field
 * with a Copy button.
 */
export function DeviceLink(props: {
  device: { url: string; code: string | null };
  trans: TranslationBundle;
}): JSX.Element {
  const { device, trans } = props;
  const [copied, setCopied] = useState<boolean | null>(null);
  const field = React.useRef<HTMLInputElement>(null);
  const link = safeLink(device.url);
  return (
    <div
      className="jp-hy2fa-device"
      role="group"
      aria-label={trans.__('Sign in with the site')}
    >
      <p className="jp-hy2fa-device-words">{deviceWords(trans)}</p>
      {link ? (
        <a
          className="jp-hy2fa-device-link"
          href={link}
          target="_blank"
          rel="noopener noreferrer"
        >
          {link}
        </a>
      ) : (
        <div className="jp-hy2fa-error" role="alert">
          {trans.__(
            'The site gave a link that is not http or https: not shown'
          )}
        </div>
      )}
      {device.code && (
        <div className="jp-hy2fa-device-code-row">
          <label className="jp-hy2fa-device-code-label">
            {trans.__('Code')}
            <input
              ref={field}
              className="jp-mod-styled jp-hy2fa-device-code"
              readOnly
              value={device.code}
              size={Math.max(8, device.code.length + 1)}
              onFocus={event => event.currentTarget.select()}
            />
          </label>
          <button
            type="button"
            className="jp-mod-styled jp-hy2fa-form-button jp-hy2fa-device-copy"
            aria-label={trans.__('Copy the code %1', device.code)}
            onClick={() => {
              void copyText(device.code ?? '', field.current).then(
                setCopied,
                () => setCopied(false)
              );
            }}
          >
            {trans.__('Copy')}
          </button>
          <span className="jp-hy2fa-device-copied" role="status">
            {copied === true
              ? trans.__('Copied')
              : copied === false
                ? trans.__('Could not copy: select the code and copy it')
                : ''}
          </span>
        </div>
      )}
    </div>
  );
}

/** The device link of a login, while its tool waits (starting, prompting or verifying). */
export function deviceOf(
  connection: IConnection | undefined
): { url: string; code: string | null } | null {
  const device = connection?.certificate?.device;
  const state = connection?.state;
  if (
    !device ||
    (state !== 'starting' && state !== 'prompting' && state !== 'verifying')
  ) {
    return null;
  }
  return device;
}
