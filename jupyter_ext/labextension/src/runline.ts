// "The equivalent `%container run` line" of a container, from its inspect data (and its
// image's, so defaults the image already sets are left out), plus notebook cell snippets.
import { shellQuote } from './format';

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

const DURATION_FLAGS: [string, string][] = [
  ['Interval', '--health-interval'],
  ['Timeout', '--health-timeout'],
  ['StartPeriod', '--health-start-period']
];

export function runLine(info: any, image: any | null): string {
  const cfg = info.Config || {};
  const host = info.HostConfig || {};
  const imageCfg = (image && image.Config) || {};
  const args: string[] = ['%container', 'run', '-d'];
  const name = (info.Name || '').replace(/^\//, '');
  if (name) {
    args.push('--name', name);
  }
  const imageEnv = new Set<string>(imageCfg.Env || []);
  for (const env of cfg.Env || []) {
    if (!imageEnv.has(env)) {
      args.push('-e', env);
    }
  }
  for (const [port, binds] of Object.entries<any>(host.PortBindings || {})) {
    for (const b of binds || []) {
      const target = port.endsWith('/tcp') ? port.slice(0, -4) : port;
      const hostPart = b.HostIp ? `${b.HostIp}:${b.HostPort || ''}` : b.HostPort || '';
      args.push('-p', hostPart ? `${hostPart}:${target}` : target);
    }
  }
  for (const bind of host.Binds || []) {
    args.push('-v', bind);
  }
  const imageLabels = imageCfg.Labels || {};
  for (const [key, value] of Object.entries<string>(cfg.Labels || {})) {
    if (imageLabels[key] !== value) {
      args.push('-l', `${key}=${value}`);
    }
  }
  const restart = host.RestartPolicy || {};
  if (restart.Name && restart.Name !== 'no') {
    args.push(
      '--restart',
      restart.Name === 'on-failure' && restart.MaximumRetryCount
        ? `on-failure:${restart.MaximumRetryCount}`
        : restart.Name
    );
  }
  if (host.Memory) {
    args.push('-m', String(host.Memory));
  }
  if (host.NanoCpus) {
    args.push('--cpus', String(host.NanoCpus / 1e9));
  }
  if (cfg.WorkingDir && cfg.WorkingDir !== (imageCfg.WorkingDir || '')) {
    args.push('-w', cfg.WorkingDir);
  }
  if (cfg.User && cfg.User !== (imageCfg.User || '')) {
    args.push('-u', cfg.User);
  }
  if (host.Init) {
    args.push('--init');
  }
  if (host.Privileged) {
    args.push('--privileged');
  }
  for (const cap of host.CapAdd || []) {
    args.push('--cap-add', cap);
  }
  for (const cap of host.CapDrop || []) {
    args.push('--cap-drop', cap);
  }
  if (host.NetworkMode && !['default', 'bridge', ''].includes(host.NetworkMode)) {
    args.push('--network', host.NetworkMode);
  }
  if (cfg.Tty) {
    args.push('-t');
  }
  const health = cfg.Healthcheck;
  if (health && !same(health, imageCfg.Healthcheck)) {
    const test: string[] = health.Test || [];
    if (test[0] === 'NONE') {
      args.push('--no-healthcheck');
    } else if (test.length > 1) {
      args.push('--health-cmd', test[0] === 'CMD-SHELL' ? test[1] : test.slice(1).join(' '));
      for (const [key, flag] of DURATION_FLAGS) {
        if (health[key]) {
          args.push(flag, `${health[key] / 1e9}s`);
        }
      }
      if (health.Retries) {
        args.push('--health-retries', String(health.Retries));
      }
    }
  }
  const entrypoint: string[] | null = cfg.Entrypoint || null;
  if (!same(entrypoint, imageCfg.Entrypoint) && entrypoint && entrypoint.length) {
    args.push('--entrypoint', entrypoint[0]);
  }
  args.push(cfg.Image || info.Image);
  const cmd: string[] = cfg.Cmd || [];
  const extraEntry = entrypoint && entrypoint.length > 1 ? entrypoint.slice(1) : [];
  if (extraEntry.length || !same(cmd, imageCfg.Cmd)) {
    args.push(...extraEntry, ...cmd);
  }
  return args.map((a, i) => (i < 2 ? a : shellQuote(a))).join(' ');
}

/** Cells the sidebar can insert for a container: label → code. Each loads the magics
 * first, so the cell runs in any kernel that has pyjail installed. */
export function cellSnippets(name: string): Record<string, string> {
  const n = shellQuote(name);
  const magic = (line: string) => `%load_ext pyjail_jupyter\n${line}`;
  return {
    'Show its logs': magic(`%container logs ${n}`),
    'Follow its logs live': magic(`%container logs -f ${n}`),
    'Live CPU and memory': magic(`%container stats --live ${n}`),
    'Processes (top)': magic(`%container top ${n}`),
    'Inspect as a table': magic(`%container inspect ${n}`),
    'Run a command in it': magic(`%container exec ${n} sh -c 'ls /'`),
    'Python client handle':
      'from pyjail.client.connection import Client\n' +
      `container = Client().api.inspect_container(${JSON.stringify(name)})\ncontainer['State']`
  };
}
