using OrleansMeta.GrainInterfaces;
using OrleansMeta.Runtime;

namespace OrleansMeta.Grains;

/// <summary>
/// Applies a controller's command, or a broker's AlterPartition, to every partition of a batch, all at once, on the
/// silo that owns them: the calls are local, so a batch of a thousand partitions crosses the network once. Each
/// partition grain decides on its own state and writes exactly as for a single command (under the controller's epoch
/// fence, or the broker fences of an AlterPartition); this grain only gathers what happened, turning each partition's
/// failure into data so that one partition never costs the rest of the batch. Its methods are read-only (it holds no
/// state), so batches to one silo run side by side.
/// </summary>
internal sealed class PartitionBatchGrain : Grain, IPartitionBatchGrain
{
    public Task<PartitionBatchResult> ApplyAsync(PartitionBatch batch)
    {
        var calls = new Task<PartitionChange>[batch.Partitions.Count];
        for (var i = 0; i < calls.Length; i++)
        {
            calls[i] = GrainFactory.GetGrain<IPartitionGrain>(batch.Partitions[i]).ApplyAsync(batch.Command);
        }

        return GatherAsync(batch.Partitions, calls);
    }

    public Task<PartitionBatchResult> AlterAsync(PartitionAlterBatch batch)
    {
        if (batch.Commands.Count != batch.Partitions.Count)
        {
            throw new ArgumentException($"The batch names {batch.Partitions.Count} partitions and {batch.Commands.Count} commands.", nameof(batch));
        }

        var calls = new Task<PartitionChange>[batch.Partitions.Count];
        for (var i = 0; i < calls.Length; i++)
        {
            calls[i] = GrainFactory.GetGrain<IPartitionGrain>(batch.Partitions[i]).AlterPartitionAsync(batch.Commands[i]);
        }

        return GatherAsync(batch.Partitions, calls);
    }

    private static async Task<PartitionBatchResult> GatherAsync(IReadOnlyList<string> partitions, Task<PartitionChange>[] calls)
    {
        var changes = new List<PartitionChange>(calls.Length);
        var failures = new List<PartitionFailure>();
        for (var i = 0; i < calls.Length; i++)
        {
            try
            {
                changes.Add(await calls[i]);
            }
            catch (Exception exception)
            {
                // A refusal, or (the partition's silo went away, the call timed out) an unknown outcome, which the
                // sender learns from the partition's state.
                var (code, retryable) = MetaException.Outcome(exception);
                failures.Add(new PartitionFailure(partitions[i], code, exception.Message, retryable));
            }
        }

        return new PartitionBatchResult(changes, failures);
    }
}
