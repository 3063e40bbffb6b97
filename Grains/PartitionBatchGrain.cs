using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Runtime;

namespace OrleansMeta.Grains;

/// <summary>
/// Applies a controller's command to every partition of a batch, all at once, on the silo that owns them: the calls
/// are local, so a batch of a thousand partitions crosses the network once. Each partition grain decides on its own
/// state and writes with the controller's epoch fence exactly as for a single command; this grain only gathers what
/// happened, turning each partition's failure into data so that one partition never costs the rest of the batch.
/// Its one method is read-only (it holds no state), so the controller's batches to one silo run side by side.
/// </summary>
internal sealed class PartitionBatchGrain : Grain, IPartitionBatchGrain
{
    public async Task<PartitionBatchResult> ApplyAsync(PartitionBatch batch)
    {
        var calls = new Task<PartitionChange>[batch.Partitions.Count];
        for (var i = 0; i < calls.Length; i++)
        {
            calls[i] = GrainFactory.GetGrain<IPartitionGrain>(batch.Partitions[i]).ApplyAsync(batch.Command);
        }

        var changes = new List<PartitionChange>(calls.Length);
        var failures = new List<PartitionFailure>();
        for (var i = 0; i < calls.Length; i++)
        {
            try
            {
                changes.Add(await calls[i]);
            }
            catch (MetaException exception)
            {
                failures.Add(new PartitionFailure(batch.Partitions[i], exception.Code, exception.Message));
            }
            catch (Exception exception)
            {
                failures.Add(new PartitionFailure(batch.Partitions[i], ErrorCodes.Unavailable, exception.Message));
            }
        }

        return new PartitionBatchResult(changes, failures);
    }
}
