using Microsoft.Extensions.Options;
using OrleansMeta.Runtime.Cluster;

namespace OrleansMeta.Membership.Tests;

public sealed class OptionsAndLocalTests
{
    [Fact]
    public void The_default_options_are_valid()
    {
        Assert.True(new MembershipOptionsValidator().Validate(null, new MembershipOptions()).Succeeded);
    }

    [Fact]
    public void Every_problem_with_the_options_is_reported_with_how_to_fix_it()
    {
        var result = new MembershipOptionsValidator().Validate(null, new MembershipOptions
        {
            ProbeInterval = TimeSpan.FromSeconds(1),
            ProbeTimeout = TimeSpan.FromSeconds(2),
            MissedProbesLimit = 0,
            VotesForDeath = 0,
            HeartbeatInterval = TimeSpan.FromSeconds(5),
            HeartbeatStaleAfter = TimeSpan.FromSeconds(6),
            JoinTimeout = TimeSpan.FromSeconds(6),
        });

        Assert.True(result.Failed);
        var failures = result.Failures!.ToArray();
        Assert.Equal(5, failures.Length);
        Assert.Contains(failures, f => f.Contains("ProbeTimeout", StringComparison.Ordinal) && f.Contains("lower", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("MissedProbesLimit", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("VotesForDeath", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("HeartbeatStaleAfter", StringComparison.Ordinal) && f.Contains("twice", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("JoinTimeout", StringComparison.Ordinal));
    }

    [Fact]
    public void Local_membership_is_one_silo_always_active_at_version_one()
    {
        var membership = new LocalClusterMembership(Options.Create(new ClusterOptions { SiloEndpoint = "http://127.0.0.1:11111/", SiloName = "dev" }), TimeProvider.System);

        Assert.True(membership.IsActive);
        Assert.Equal(new SiloAddress("http://127.0.0.1:11111", 1), membership.Self);
        Assert.Equal(1, membership.CurrentView.Version);
        Assert.Equal([membership.Self], membership.CurrentView.ActiveSilos);
    }
}
