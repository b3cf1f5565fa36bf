// Shared helpers of the ota-tool tests: run the CLI in-process, start the real daemon
// and run libcoap's coap-client, all on 127.0.0.1.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { run } from '../../tools/ota-tool/main.ts';

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs ota-tool in-process and collects its output. */
export async function runTool(argv: string[], env: Record<string, string | undefined> = {}): Promise<ToolResult> {
  let stdout = '';
  let stderr = '';
  const code = await run(argv, {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    env,
  });
  return { code, stdout, stderr };
}

/** Parses the one JSON object that --json prints. */
export function jsonOf(result: ToolResult): Record<string, unknown> {
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

export function makeTempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `ota-tool-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface RunningDaemon {
  coapPort: number;
  adminPort: number;
  adminUrl: string;
  coapUrl: string;
  token: string;
  stop: () => Promise<void>;
}

const REPO_ROOT = new URL('../../', import.meta.url).pathname;
/** Time for the daemon to log "listening", in milliseconds. */
const DAEMON_START_TIMEOUT_MS = 20_000;

/** Starts bin/ota-server.js on free ports and resolves once it logs "listening". */
export function startDaemon(dataDir: string, extraArgs: string[] = []): Promise<RunningDaemon> {
  const token = 'test-admin-token-0123456789';
  const child: ChildProcess = spawn(
    process.execPath,
    ['bin/ota-server.js', '--coap-port', '0', '--admin-port', '0', '--data-dir', dataDir, '--admin-token', token, '--log-level', 'info', ...extraArgs],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });

  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        resolve();
        return;
      }
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`ota-server did not log "listening" within ${DAEMON_START_TIMEOUT_MS} ms; stderr: ${stderr}`));
    }, DAEMON_START_TIMEOUT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ota-server exited with ${code} before listening; stderr: ${stderr}`));
    });
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      let record: { msg?: string; coapPort?: number; adminPort?: number };
      try {
        record = JSON.parse(line);
      } catch {
        return;
      }
      if (record.msg !== 'listening' || !record.coapPort || !record.adminPort) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve({
        coapPort: record.coapPort,
        adminPort: record.adminPort,
        adminUrl: `http://127.0.0.1:${record.adminPort}`,
        coapUrl: `coap://127.0.0.1:${record.coapPort}`,
        token,
        stop,
      });
    });
  });
}

/** Runs a libcoap command (such as coap-client-notls) and resolves with its output. */
export function runLibcoap(command: string, args: string[], timeoutMs = 30_000): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}
