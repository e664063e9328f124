import { describeKey, leaderKey, permitKey, tickClaimKey } from './held-key';

describe('held-key naming', () => {
  it('reads back every kind of key it names', () => {
    expect(describeKey(tickClaimKey('Billing.run', 1_700_000_000_000))).toEqual({
      key: 'Billing.run',
      kind: 'tick-claim',
    });
    expect(describeKey(leaderKey('outbox-relay'))).toEqual({ key: 'outbox-relay', kind: 'leader' });
    expect(describeKey(permitKey('export', 2))).toEqual({ key: 'export', kind: 'lock', permit: 2 });
    expect(describeKey(permitKey('export', 0))).toEqual({ key: 'export', kind: 'lock' });
    expect(describeKey('order:42')).toEqual({ key: 'order:42', kind: 'lock' });
  });

  it('leaves keys that only look alike as plain locks', () => {
    expect(describeKey(':leader')).toEqual({ key: ':leader', kind: 'lock' });
    expect(describeKey('x:tick:')).toEqual({ key: 'x:tick:', kind: 'lock' });
    expect(describeKey('x:permit:0')).toEqual({ key: 'x:permit:0', kind: 'lock' });
  });
});
