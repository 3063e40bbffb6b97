namespace OrleansMeta.Runtime.Tests;

public sealed class GrainIdTests
{
    [Fact]
    public void Grain_id_round_trips_through_its_text_form()
    {
        var id = new GrainId("topic", "orders/eu");
        Assert.Equal(id, GrainId.Parse(id.ToString()));
    }
}
