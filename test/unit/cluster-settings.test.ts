// tandem.conf: defaults, the file, the environment winning, and bad values refused with the name and the fix.
import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS, detectionMs, resolveSettings, settingsFile } from '../../agent/cluster/settings.js';

const F = '/etc/tandem/tandem.conf';

describe('cluster settings (tandem.conf)', () => {
  it('defaults are LifeKeeper\'s: 5 s × 3 beats, CONFIRMSOTO 600 proceeding, majority quorum, osu', () => {
    const s = resolveSettings(null, F, {});
    expect(s).toEqual(DEFAULT_SETTINGS);
    expect(detectionMs(s)).toBe(15_000);
  });

  it('reads NAME=value lines with comments and quotes; the environment overrides the file', () => {
    const text = '# heartbeat\nLCMHBEATTIME=2\n\nLCMNUMHBEATS = 4\nCONFIRMSODEF=1\nCONFIRMSOTO=30\nFENCE_CMD="/usr/sbin/fence-it --node"\nQUORUM_MODE=witness\nWITNESS=10.0.0.9:7600\n';
    const s = resolveSettings(text, F, { LCMHBEATTIME: '1' });
    expect(s).toEqual({
      heartbeatSeconds: 1, missedBeats: 4, confirmTimeoutSeconds: 30, confirmDefault: 'block',
      quorumMode: 'witness', witness: '10.0.0.9:7600', quorumLossAction: 'osu', fenceCommand: '/usr/sbin/fence-it --node',
    });
  });

  it('refuses values below LifeKeeper\'s minimums, naming the setting and the fix', () => {
    expect(() => resolveSettings('LCMHBEATTIME=0\n', F, {})).toThrow('LCMHBEATTIME=0 (/etc/tandem/tandem.conf:1) is below the minimum 1; set LCMHBEATTIME to the seconds between heartbeats, at least 1 (default 5)');
    expect(() => resolveSettings(null, F, { LCMNUMHBEATS: '1' })).toThrow('LCMNUMHBEATS=1 (environment) is below the minimum 2');
    expect(() => resolveSettings('LCMHBEATTIME=1.5\n', F, {})).toThrow('LCMHBEATTIME=1.5 (/etc/tandem/tandem.conf:1) is not a whole number');
  });

  it('refuses unknown values and unknown names', () => {
    expect(() => resolveSettings('QUORUM_MODE=quorate\n', F, {})).toThrow('QUORUM_MODE=quorate (/etc/tandem/tandem.conf:1) is unknown; set QUORUM_MODE to majority (default), witness (with WITNESS=HOST:PORT) or none (only with FENCE_CMD)');
    expect(() => resolveSettings('CONFIRMSODEF=2\n', F, {})).toThrow('CONFIRMSODEF=2 (/etc/tandem/tandem.conf:1) is neither 0 nor 1');
    expect(() => resolveSettings('QUORUM_LOSS_ACTION=halt\n', F, {})).toThrow('QUORUM_LOSS_ACTION=halt');
    expect(() => resolveSettings('\nLCMHBEATIME=5\n', F, {})).toThrow('/etc/tandem/tandem.conf:2: unknown setting LCMHBEATIME; the settings are LCMHBEATTIME, LCMNUMHBEATS');
    expect(() => resolveSettings('just words\n', F, {})).toThrow('is not a NAME=value line');
    expect(() => resolveSettings('QUORUM_MODE=witness\nWITNESS=nohostport\n', F, {})).toThrow('WITNESS=nohostport (/etc/tandem/tandem.conf:2) is not HOST:PORT');
  });

  it('refuses combinations that allow split brain: none without a fence command, witness without its address', () => {
    expect(() => resolveSettings('QUORUM_MODE=none\n', F, {})).toThrow('QUORUM_MODE=none is allowed only with FENCE_CMD');
    expect(resolveSettings('QUORUM_MODE=none\nFENCE_CMD=/bin/true\n', F, {}).quorumMode).toBe('none');
    expect(() => resolveSettings('QUORUM_MODE=witness\n', F, {})).toThrow('QUORUM_MODE=witness needs WITNESS=HOST:PORT');
  });

  it('the file lives under TANDEM_HOME when set', () => {
    expect(settingsFile({ TANDEM_HOME: '/tmp/n1' })).toBe('/tmp/n1/etc/tandem.conf');
    expect(settingsFile({})).toBe('/etc/tandem/tandem.conf');
  });
});
