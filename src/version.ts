/**
 * The frontend's version; a unit test keeps it equal to package.json's. The server
 * extension reports its own at `GET hy2fa/version`, and the two must match.
 */
export const FRONTEND_VERSION = '0.1.0';
