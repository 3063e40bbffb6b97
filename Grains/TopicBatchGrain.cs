using OrleansMeta.GrainInterfaces;
using OrleansMeta.Runtime;

namespace OrleansMeta.Grains;

/// <summary>
/// Applies many topics' config changes at once on the silo that owns their grains: the calls are local, so a batched
/// request crosses the network once per silo. Each topic grain validates and writes its own change exactly as for a
/// single change; this grain only turns each topic's failure into data, so one topic never costs the others.
/// </summary>
internal sealed class TopicBatchGrain : Grain, ITopicBatchGrain
{
    public async Task<IReadOnlyList<TopicConfigOutcome>> AlterConfigsAsync(IReadOnlyList<TopicConfigChange> changes, bool validateOnly)
    {
        var calls = new Task<TopicChange>[changes.Count];
        for (var i = 0; i < calls.Length; i++)
        {
            calls[i] = GrainFactory.GetGrain<ITopicGrain>(TopicKeys.For(changes[i].Name)).AlterConfigsAsync(changes[i].Name, changes[i].Changes, validateOnly);
        }

        var outcomes = new TopicConfigOutcome[calls.Length];
        for (var i = 0; i < calls.Length; i++)
        {
            var name = changes[i].Name;
            try
            {
                var change = await calls[i];
                outcomes[i] = new TopicConfigOutcome(name, change.Topic.TopicId, change.MetadataOffset, null, null, false);
            }
            catch (Exception exception)
            {
                // A refusal, or (the topic's silo went away, the call timed out) an unknown outcome.
                var (code, retryable) = MetaException.Outcome(exception);
                outcomes[i] = new TopicConfigOutcome(name, null, null, code, exception.Message, retryable);
            }
        }

        return outcomes;
    }
}
