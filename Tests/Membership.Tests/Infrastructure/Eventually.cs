using System.Diagnostics;

namespace OrleansMeta.Membership.Tests.Infrastructure;

/// <summary>Waits for a condition to become true (polling), failing with a message after a generous bound.</summary>
public static class Eventually
{
    public static async Task Until(Func<bool> condition, string what, TimeSpan? within = null)
    {
        var limit = within ?? TimeSpan.FromSeconds(30);
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed > limit)
            {
                Assert.Fail($"Timed out after {limit.TotalSeconds:0} s waiting until {what}.");
            }

            await Task.Delay(10);
        }
    }
}
