using FsCheck.Fluent;
using OrleansMeta.Grains.Groups;

namespace OrleansMeta.Groups.Tests;

public sealed class ReconciliationSimulationTests
{
    public static TheoryData<string, bool> Assignors => new()
    {
        { UniformAssignor.AssignorName, true },
        { UniformAssignor.AssignorName, false },
        { RangeAssignor.AssignorName, true },
        { RangeAssignor.AssignorName, false },
    };

    [Theory]
    [MemberData(nameof(Assignors))]
    public void Through_joins_leaves_target_changes_and_late_acknowledgements_no_partition_ever_has_two_owners_and_the_group_settles(
        string assignorName, bool homogeneous)
    {
        var entered = new Dictionary<MemberState, int>();
        Properties.Hold(Gen.Choose(0, 1_000_000), seed =>
        {
            var simulation = new GroupSimulation(seed, PartitionAssignors.Get(assignorName), homogeneous);

            simulation.Run(rounds: 400);
            var settledIn = simulation.Settle(maxRounds: 6);

            Assert.True(simulation.GroupHistory.Violations.Count == 0, $"seed {seed}: {simulation.GroupHistory.Violations.FirstOrDefault()}");
            Assert.True(simulation.ClientHistory.Violations.Count == 0, $"seed {seed}: {simulation.ClientHistory.Violations.FirstOrDefault()}");
            Assert.True(settledIn > 0, $"not stable after 6 rounds of heartbeats: {simulation.Describe()}");
            foreach (var (state, count) in simulation.StatesEntered)
            {
                entered[state] = entered.GetValueOrDefault(state) + count;
            }
        }, tests: 60);

        // The runs must have made members wait, or they proved little.
        Assert.True(entered.GetValueOrDefault(MemberState.UnrevokedPartitions) > 100, $"{entered.GetValueOrDefault(MemberState.UnrevokedPartitions)} revocations");
        Assert.True(entered.GetValueOrDefault(MemberState.UnreleasedPartitions) > 100, $"{entered.GetValueOrDefault(MemberState.UnreleasedPartitions)} waits for release");
    }
}
