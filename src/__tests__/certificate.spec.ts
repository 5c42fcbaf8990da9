import React from 'react';

import { CertificateLine, DeviceLink, deviceOf } from '../certificate';
import { Progress } from '../progress';
import type { ICertificate, IConnection } from '../tokens';
import {
  certificateId,
  certificateWords,
  expiredMasterWords,
  progressSince,
  progressWords,
  renewWords,
  safeLink,
  shouldWarn
} from '../words';
import { trans } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { renderToStaticMarkup } = require('react-dom/server') as {
  renderToStaticMarkup: (element: React.ReactElement) => string;
};

const NOW = Date.parse('2025-03-01T12:00:00Z');
const at = (seconds: number): string =>
  new Date(NOW + seconds * 1000).toISOString();

const cert = (extra: Partial<ICertificate> = {}): ICertificate => ({
  issuer: 'sshproxy',
  valid_before: at(23 * 3600 + 12 * 60 + 30),
  principals: ['hopper'],
  key: '/home/hopper/.ssh/nersc',
  ...extra
});

const connection = (extra: Partial<IConnection> = {}): IConnection =>
  ({
    id: 'c1',
    name: 'perlmutter',
    cluster: 'perlmutter',
    host: 'perlmutter.nersc.gov',
    user: 'hopper',
    port: 22,
    state: 'verifying',
    prompt: null,
    reason: null,
    message: '',
    control_path: '/tmp/cm',
    master_pid: null,
    since: null,
    persist: '3600',
    updated: at(-5),
    version: 3,
    ...extra
  }) as IConnection;

describe('certificate words', () => {
  it('says how long a certificate is valid, to the minute', () => {
    expect(certificateWords(cert(), trans, NOW)).toEqual({
      text: 'certificate valid for 23 h 12 min',
      expired: false
    });
    expect(
      certificateWords(cert({ valid_before: at(40) }), trans, NOW).text
    ).toBe('certificate valid for less than a minute');
  });

  it('says how long ago it expired', () => {
    expect(
      certificateWords(cert({ valid_before: at(-5 * 60 - 10) }), trans, NOW)
    ).toEqual({ text: 'certificate expired 5 min ago', expired: true });
  });

  it('says a certificate without an end never expires, and never warns', () => {
    const forever = cert({ valid_before: null });
    expect(certificateWords(forever, trans, NOW).text).toBe(
      'certificate never expires'
    );
    expect(shouldWarn(forever, NOW)).toBe(false);
  });

  it('says what an expired master means, per issuer', () => {
    expect(expiredMasterWords(cert(), trans)).toBe(
      'The master still runs; a new login will ask for your password + OTP'
    );
    expect(expiredMasterWords(cert({ issuer: 'command' }), trans)).toMatch(
      /sign in with the site again/
    );
  });

  it('warns inside the renew window only: 10 min unless the server says', () => {
    expect(shouldWarn(cert({ valid_before: at(11 * 60) }), NOW)).toBe(false);
    expect(shouldWarn(cert({ valid_before: at(9 * 60) }), NOW)).toBe(true);
    expect(shouldWarn(cert({ valid_before: at(-60) }), NOW)).toBe(true);
    expect(
      shouldWarn(cert({ valid_before: at(30 * 60), renew_before: 3600 }), NOW)
    ).toBe(true);
  });

  it('tells one certificate from the next by key and end', () => {
    expect(certificateId(cert())).toBe(certificateId(cert()));
    expect(certificateId(cert())).not.toBe(
      certificateId(cert({ valid_before: at(86400) }))
    );
    expect(certificateId(cert())).not.toBe(certificateId(cert({ key: '/k2' })));
  });

  it('says what Renew does, with and without a live master', () => {
    const soon = cert({ valid_before: at(5 * 60) });
    expect(renewWords('Perlmutter', soon, false, trans, NOW)).toBe(
      'The certificate for Perlmutter expires in 5 min. Renew logs in again for a new one.'
    );
    expect(renewWords('Perlmutter', soon, true, trans, NOW)).toMatch(
      /renewed at the next login \(Renew asks before it disconnects\)/
    );
  });
});

describe('the certificate line of a row', () => {
  const line = (certificate: ICertificate, state: IConnection['state']) =>
    renderToStaticMarkup(
      React.createElement(CertificateLine, {
        certificate,
        state,
        now: NOW,
        trans
      })
    );

  it('is its own element, apart from the state', () => {
    const html = line(cert(), 'connected');
    expect(html).toContain('class="jp-hy2fa-cert"');
    expect(html).toContain('certificate valid for 23 h 12 min');
    expect(html).not.toContain('The master still runs');
  });

  it('says plainly that a master still runs on an expired certificate', () => {
    const expired = cert({ valid_before: at(-300) });
    expect(line(expired, 'connected')).toContain(
      'The master still runs; a new login will ask for your password + OTP'
    );
    expect(line(expired, 'connected')).toContain('data-expired="true"');
    expect(line(expired, 'idle')).not.toContain('The master still runs');
  });
});

describe('the device link', () => {
  const render = (url: string, code: string | null = 'WDJB-MJHT') =>
    renderToStaticMarkup(
      React.createElement(DeviceLink, { device: { url, code }, trans })
    );

  it('takes http and https only', () => {
    expect(safeLink('https://iam.example.org/device?x=1')).toBe(
      'https://iam.example.org/device?x=1'
    );
    expect(safeLink('http://localhost:8080/d')).toBe('http://localhost:8080/d');
    for (const hostile of [
      'javascript:alert(1)',
      ' JavaScript:alert(1)',
      'data:text/html,<script>alert(1)</script>',
      'vbscript:msgbox',
      'file:///etc/passwd',
      '//evil.example/x',
      '/device',
      'https://',
      ''
    ]) {
      expect(safeLink(hostile)).toBeNull();
    }
  });

  it('renders the link for a new tab, without opener or referrer, and the code to copy', () => {
    const html = render('https://iam.example.org/device');
    expect(html).toMatch(
      /<a class="jp-hy2fa-device-link" href="https:\/\/iam.example.org\/device" target="_blank" rel="noopener noreferrer">/
    );
    expect(html).toContain('value="WDJB-MJHT"');
    expect(html).toContain('readonly=""');
    expect(html).toContain('>Copy</button>');
    expect(html).toContain(
      'Open the link, enter the code, and approve: the login goes on by itself'
    );
  });

  it('refuses a hostile link: no anchor, no href', () => {
    const html = render('javascript:alert(document.cookie)');
    expect(html).not.toContain('<a ');
    expect(html).not.toContain('javascript:');
    expect(html).toContain('not http or https');
  });

  it('shows no code field when the tool printed none', () => {
    expect(render('https://iam.example.org/device', null)).not.toContain(
      '<input'
    );
  });

  it('shows while the login waits, from starting straight to verifying without a since', () => {
    const device = { url: 'https://iam.example.org/d', code: 'AB12' };
    const waiting = connection({
      certificate: { ...cert({ issuer: 'command' }), device },
      verifying: { since: null, choice: null, lines: [] }
    });
    expect(deviceOf(waiting)).toEqual(device);
    expect(progressWords(waiting, trans)).toBe(
      'Waiting for you to approve in the browser…'
    );
    expect(progressSince(waiting)).toBe(waiting.updated);
    const html = renderToStaticMarkup(
      React.createElement(Progress, {
        connection: waiting,
        label: 'Perlmutter',
        trans
      })
    );
    expect(html).toContain('href="https://iam.example.org/d"');
    expect(html).toContain('value="AB12"');
    expect(
      deviceOf(
        connection({
          state: 'connected',
          certificate: { ...cert(), device }
        })
      )
    ).toBeNull();
  });
});
