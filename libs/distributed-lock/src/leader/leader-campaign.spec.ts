import { campaignPause } from './leader-campaign';
import { stepDownGuard } from './leadership';

describe('campaign pauses', () => {
  it('double per term that ended by itself, within ±25%, up to the cap', () => {
    for (let streak = 1; streak <= 12; streak += 1) {
      const raw = Math.min(5_000, 100 * 2 ** (streak - 1));
      for (let i = 0; i < 50; i += 1) {
        const pause = campaignPause(100, streak, 5_000);
        expect(pause).toBeGreaterThanOrEqual(Math.floor(raw * 0.75));
        expect(pause).toBeLessThanOrEqual(Math.ceil(raw * 1.25));
      }
    }
    // Never 0: a method that throws at once cannot loop without a timer between attempts.
    expect(campaignPause(0, 1, 0)).toBeGreaterThanOrEqual(1);
  });
});

describe('step-down guard', () => {
  it('is a twentieth of the TTL (5 ms to 1 s), and at most half the extension threshold', () => {
    expect(stepDownGuard(30_000, 15_000)).toBe(1_000);
    expect(stepDownGuard(2_000, 1_000)).toBe(100);
    expect(stepDownGuard(1_000, 500)).toBe(50);
    expect(stepDownGuard(60, 10)).toBe(5);
    expect(stepDownGuard(1_000, 20)).toBe(10);
    expect(stepDownGuard(10, 1)).toBe(1);
  });
});
